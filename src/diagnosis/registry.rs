//! Rules for registry failures: transport, HTTP status with the registry's error envelope, and
//! content verification.

use super::denied::{self, DenialReason};
use super::{Code, Finding};
use crate::ecr_token::EcrTokenInfo;
use crate::reference::ImageRef;
use crate::registry::blob::VerifyError;
use crate::registry::transport::{Hop, TransportError};
use crate::registry::{ErrorCode, RegistryError, Request, StatusError};
use crate::sts::Caller;

/// Repository prefixes commonly used for ECR pull-through cache rules.
pub(crate) const PULL_THROUGH_PREFIXES: &[&str] = &[
    "docker-hub",
    "dockerhub",
    "ecr-public",
    "quay",
    "k8s",
    "registry-k8s-io",
    "ghcr",
    "github",
    "gitlab",
    "azure",
    "mcr",
];

/// The credentials a path pulled with, as the diagnosis may name them (never the secret).
#[derive(Debug, Clone, Copy, Default)]
pub enum CredentialsUsed<'a> {
    /// No credentials (a registry that is not ECR, or none could be had).
    #[default]
    None,
    /// The pod's own identity and the ECR token minted with it.
    PodIdentity {
        caller: Option<&'a Caller>,
        token: Option<&'a EcrTokenInfo>,
    },
    /// An entry of a pull secret (`imagePullSecrets`, a mounted docker config).
    PullSecret {
        /// Where the docker config came from.
        source: &'a str,
        /// The entry's registry key.
        entry: &'a str,
        username: &'a str,
        /// `expiration` of an ECR-format password, Unix seconds.
        ecr_expires_at: Option<i64>,
    },
    /// What the node's kubelet credential provider returned.
    NodeProvider {
        provider: &'a str,
        username: &'a str,
        ecr_expires_at: Option<i64>,
    },
}

impl CredentialsUsed<'_> {
    /// Who the credentials act as, when the probe knows (the pod's caller); a registry
    /// denial usually names the principal itself.
    fn principal(&self) -> Option<String> {
        match self {
            CredentialsUsed::PodIdentity {
                caller: Some(c), ..
            } => Some(c.arn.clone()),
            _ => None,
        }
    }

    /// A short phrase naming these credentials, for a summary.
    pub fn describe(&self) -> String {
        let expiry = |e: &Option<i64>| match e {
            Some(t) => format!(
                ", ECR token expiring {}",
                super::rfc3339(*t).as_str().unwrap_or("?")
            ),
            None => String::new(),
        };
        match self {
            CredentialsUsed::None => "no credentials".into(),
            CredentialsUsed::PodIdentity { token: Some(t), .. } => format!(
                "a fresh ECR token from {} ({}) minted with the pod's identity",
                t.region, t.api_endpoint
            ),
            CredentialsUsed::PodIdentity { token: None, .. } => "the pod's identity".into(),
            CredentialsUsed::PullSecret {
                source,
                entry,
                username,
                ecr_expires_at,
            } => format!(
                "pull secret {source}, entry {entry} (user {username}{})",
                expiry(ecr_expires_at)
            ),
            CredentialsUsed::NodeProvider {
                provider,
                username,
                ecr_expires_at,
            } => format!(
                "the node's credential provider {provider} (user {username}{})",
                expiry(ecr_expires_at)
            ),
        }
    }

    /// The fix for credentials the registry refused (HTTP 401), fitted to their source.
    fn unauthorized_fix(&self, image: &ImageRef) -> String {
        let region = image.ecr.as_ref().map(|e| e.region.as_str());
        match self {
            CredentialsUsed::None => match region {
                Some(_) => "Give this path credentials for the registry: an ECR token (a pull secret refreshed within 12 hours, the node's credential provider matching this host, or the pod's identity).".into(),
                None => "Add a pull secret with credentials for this registry (`imagePullSecrets` on the pod or its ServiceAccount).".into(),
            },
            CredentialsUsed::PodIdentity { .. } => "Make sure the token is minted in the registry's own region (the probe does) and that the host name is the real ECR registry.".into(),
            CredentialsUsed::PullSecret { source, entry, ecr_expires_at, .. } => match (ecr_expires_at, region) {
                (Some(_), Some(r)) => format!("The ECR token in {source} (entry {entry}) is no longer accepted: refresh the secret from `aws ecr get-login-password --region {r}` (tokens live 12 hours; a CronJob or an operator must renew it), and make sure the token was minted in {r}, the registry's region."),
                _ => format!("Fix the username and password of entry {entry} in {source}: the registry refuses them."),
            },
            CredentialsUsed::NodeProvider { provider, .. } => format!("The registry refused what the node's credential provider {provider} returned: check that the provider's `matchImages` and region fit this host, and that the node role's ECR token is for the registry's region."),
        }
    }

    /// The fix for a Bearer token that its token service issued without pull on the
    /// repository (`insufficient_scope`): the credentials, if any, were accepted, so changing
    /// the password fixes nothing; the account's access or the name is what is wrong.
    fn insufficient_scope_fix(&self, image: &ImageRef) -> String {
        let repo = &image.repository;
        let missing = "A token service grants nothing on a repository that does not exist either, so check the name first.";
        match self {
            CredentialsUsed::None => format!(
                "{missing} If {repo} is private, add a pull secret whose account may pull it (`imagePullSecrets` on the pod or its ServiceAccount)."
            ),
            CredentialsUsed::PullSecret {
                source,
                entry,
                username,
                ..
            } => format!(
                "{missing} Otherwise give user {username} (entry {entry} in {source}) pull access to {repo} in the registry (a team, project or robot-account permission), or use an entry whose account has it; its password is fine."
            ),
            CredentialsUsed::NodeProvider {
                provider, username, ..
            } => format!(
                "{missing} Otherwise give user {username}, returned by the node's credential provider {provider}, pull access to {repo} in the registry."
            ),
            CredentialsUsed::PodIdentity { .. } => {
                format!("{missing} Otherwise give the pod's identity pull access to {repo}.")
            }
        }
    }
}

/// Whether a challenge says the token was good but its scope does not cover the request
/// (`error="insufficient_scope"`, RFC 6750 §3.1): distribution's token auth answers a pull
/// with it when the token service granted no `pull` on the repository.
fn insufficient_scope(challenge: Option<&str>) -> bool {
    challenge.is_some_and(|c| {
        let (scheme, params) = crate::registry::parse_challenge(c);
        scheme == "bearer"
            && params
                .iter()
                .any(|(k, v)| k == "error" && v == "insufficient_scope")
    })
}

/// What the rules need to know besides the error.
#[derive(Debug, Clone, Copy)]
pub struct RegistryContext<'a> {
    pub image: &'a ImageRef,
    /// `host[:port]` of the registry endpoint (to tell a redirect target from the registry).
    pub registry_host: &'a str,
    /// Whose credentials the pull used: a finding names them, and its fix fits them.
    pub credentials: CredentialsUsed<'a>,
    /// After `MANIFEST_UNKNOWN`: whether the repository exists, when the registry said.
    pub repository_exists: Option<bool>,
}

/// Whether the registry was reached at another address than its name (`--registry-endpoint`).
fn is_override(ctx: &RegistryContext<'_>) -> bool {
    !ctx.registry_host.eq_ignore_ascii_case(&ctx.image.registry)
}

/// For an address `--registry-endpoint` gave: where it came from and the port it names.
fn override_note(ctx: &RegistryContext<'_>, host: &str) -> String {
    if !is_override(ctx) || host != ctx.registry_host {
        return String::new();
    }
    let port = host.rsplit_once(':').map_or("443", |(_, p)| p);
    format!(
        "{host} is the address `--registry-endpoint` (or `ECR_PULL_PROBE_REGISTRY_ENDPOINT`) gives for {}: check that it is the one meant and that the registry listens on port {port} there. ",
        ctx.image.registry
    )
}

fn storage_hint(ctx: &RegistryContext<'_>) -> String {
    match &ctx.image.ecr {
        Some(e) => format!("prod-{}-starport-layer-bucket", e.region),
        None => "the registry's blob storage".into(),
    }
}

pub fn registry_finding(err: &RegistryError, ctx: &RegistryContext<'_>) -> Finding {
    match err {
        RegistryError::Transport(t) => transport_finding(t, ctx),
        RegistryError::Status(s) => status_finding(s, ctx),
        RegistryError::Body { host, .. } => Finding::new(
            Code::REGISTRY_ERROR,
            format!("the answer of {host} broke off: {err}"),
        )
        .with("host", host.clone()),
        RegistryError::ManifestTooLarge { .. }
        | RegistryError::Manifest(_)
        | RegistryError::ManifestDigestMismatch { .. } => {
            Finding::new(Code::MANIFEST_INVALID, crate::error_chain(err))
        }
        RegistryError::PlatformNotFound { wanted, available } => Finding::new(
            Code::PLATFORM_NOT_IN_INDEX,
            format!(
                "{} has no {wanted} manifest; it has {}",
                ctx.image.original,
                available.join(", ")
            ),
        )
        .with("wanted", wanted.clone())
        .with("available", available.clone())
        .fix(format!(
            "Push a {wanted} image to the index, or run the workload on nodes of one of: {}.",
            available.join(", ")
        )),
        RegistryError::Verify {
            digest,
            host,
            source,
        } => {
            let code = match source {
                VerifyError::Truncated { .. } => Code::BLOB_TRUNCATED,
                VerifyError::UnsupportedDigest { .. } => Code::MANIFEST_INVALID,
                VerifyError::DigestMismatch { .. } | VerifyError::Oversized { .. } => {
                    Code::BLOB_DIGEST_MISMATCH
                }
            };
            let mut f = Finding::new(code, format!("blob {digest} from {host}: {source}"))
                .with("digest", digest.clone())
                .with("served_by", host.clone());
            if let VerifyError::DigestMismatch { actual, .. } = source {
                f = f.with("actual_digest", actual.clone());
            }
            f
        }
        RegistryError::Interrupted {
            digest,
            host,
            received,
            expected,
            ..
        } => Finding::new(
            Code::BLOB_TRUNCATED,
            format!(
                "blob {digest}: {host} closed the connection after {received} of {expected} bytes"
            ),
        )
        .with("digest", digest.clone())
        .with("served_by", host.clone())
        .with("received", *received)
        .with("expected", *expected),
        RegistryError::TokenFormat { host, .. } => {
            Finding::new(Code::REGISTRY_ERROR, err.to_string()).with("host", host.clone())
        }
    }
}

fn transport_finding(t: &TransportError, ctx: &RegistryContext<'_>) -> Finding {
    let host = t.host().to_string();
    let detail = std::error::Error::source(t)
        .map(crate::error_chain)
        .unwrap_or_default();
    let f = match (t, t.hop()) {
        (TransportError::TooManyRedirects { .. } | TransportError::BadRedirect { .. }, _) => {
            Finding::new(Code::REGISTRY_ERROR, t.to_string())
        }
        (TransportError::Malformed { .. }, _) => Finding::new(Code::REGISTRY_ERROR, t.to_string()),
        (TransportError::RefusedHop { from, .. }, _) => {
            Finding::new(Code::REGISTRY_REDIRECT_REFUSED, t.to_string()).with("from", from.clone())
        }
        (_, Hop::Redirect) => Finding::new(
            Code::LAYER_STORAGE_UNREACHABLE,
            format!("the registry redirected a blob to {host}, which could not be reached: {t}"),
        )
        .with("expected_storage", storage_hint(ctx)),
        (TransportError::Tls { presented, .. }, _) => match presented {
            // Whose certificate it was is the whole question: a TLS-inspecting proxy's, a
            // self-signed one, or an internal CA's each has its own fix.
            Some(names) => Finding::new(
                Code::REGISTRY_TLS_UNTRUSTED,
                format!(
                    "the certificate of {host} is not trusted: it is issued to {} by {}{}",
                    names.subject,
                    names.issuer,
                    if names.subject == names.issuer {
                        " (self-signed)"
                    } else {
                        ""
                    }
                ),
            )
            .with("subject", names.subject.clone())
            .with("issuer", names.issuer.clone()),
            None => Finding::new(
                Code::REGISTRY_TLS_UNTRUSTED,
                format!("the certificate of {host} is not trusted"),
            ),
        },
        // The catalogue's fix is ECR's (its `ecr.dkr` VPC endpoint); another registry needs
        // egress or a copy in ECR. An address from --registry-endpoint is named as such
        // first: "egress on 443" is no help when the user typed the port.
        _ if ctx.image.ecr.is_none() => Finding::new(Code::REGISTRY_UNREACHABLE, t.to_string())
            .fix(format!(
                "{}Allow egress from the pod's network to {host} (DNS and HTTPS), or set `HTTPS_PROXY`/`NO_PROXY`; if the cluster may only reach AWS, pull the image through an ECR pull-through cache rule or copy it into ECR.",
                override_note(ctx, &host)
            )),
        _ if is_override(ctx) => Finding::new(Code::REGISTRY_UNREACHABLE, t.to_string()).fix(
            format!(
                "{}Without the override: allow egress to {} on 443, or create the interface VPC endpoint `com.amazonaws.<region>.ecr.dkr` with private DNS; check `HTTPS_PROXY`/`NO_PROXY`.",
                override_note(ctx, &host),
                ctx.image.registry
            ),
        ),
        _ => Finding::new(Code::REGISTRY_UNREACHABLE, t.to_string()),
    };
    f.with("host", host).with("detail", detail)
}

/// The repository-policy statement that lets `role_arn` pull.
pub fn repository_policy_statement(role_arn: &str) -> String {
    let stmt = serde_json::json!({
        "Sid": "AllowCrossAccountPull",
        "Effect": "Allow",
        "Principal": {"AWS": role_arn},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
    });
    serde_json::to_string_pretty(&stmt).unwrap_or_default()
}

/// A registry's error answer as a finding: first what its words say (a storage host's refusal,
/// an expired token, KMS, an IAM denial), then what its status and codes say.
fn status_finding(err: &StatusError, ctx: &RegistryContext<'_>) -> Finding {
    let host = &err.host;
    let text = err.text();
    let f = if err.request == Request::Blob && *host != ctx.registry_host {
        Finding::new(
            Code::LAYER_STORAGE_UNREACHABLE,
            format!(
                "the blob's storage host {host} refused the download with HTTP {}",
                err.status
            ),
        )
        .with("expected_storage", storage_hint(ctx))
    } else if text.contains("authorization token has expired") {
        Finding::new(Code::REGISTRY_TOKEN_EXPIRED, format!("{host}: {text}"))
    } else if text.contains("KmsError") || text.contains("KMS") {
        Finding::new(Code::KMS_ERROR, format!("{host}: {text}"))
    } else if let Some(d) = denied::parse(&text) {
        denial_finding(err, &d, &text, ctx)
    } else {
        by_status(err, &text, ctx)
    };
    f.with("host", host.clone())
        .with("http_status", err.status)
        .with("request", err.request.as_str())
        .with("registry_codes", err.codes())
        .with("registry_message", text.clone())
        .with_opt("challenge", err.challenge.clone())
}

/// An IAM denial the registry quoted (`User: … is not authorized to perform: …`): which
/// policy said no, and for a layer that the manifest was readable.
fn denial_finding(
    err: &StatusError,
    d: &denied::AccessDenied,
    text: &str,
    ctx: &RegistryContext<'_>,
) -> Finding {
    let layer = d.action.as_deref() == Some("ecr:GetDownloadUrlForLayer")
        || (err.request == Request::Blob && d.reason == DenialReason::Unspecified);
    let principal = d.principal.clone().or_else(|| ctx.credentials.principal());
    let who = principal.as_deref().unwrap_or("the principal");
    let f = match (&d.reason, layer) {
        (DenialReason::ExplicitDeny(kind), _) => Finding::new(
            Code::REGISTRY_DENIED_EXPLICIT,
            format!(
                "an explicit deny in a {kind} blocks {}",
                d.action.as_deref().unwrap_or("the pull")
            ),
        )
        .with("policy_type", kind.clone()),
        (_, true) => Finding::new(
            Code::LAYER_DENIED,
            format!("the manifest is readable but the layer download is denied: {text}"),
        ),
        (DenialReason::NoIdentityPolicy, false) => Finding::new(
            Code::REGISTRY_DENIED_IDENTITY_POLICY,
            format!(
                "no identity-based policy of {who} allows {}",
                d.action.as_deref().unwrap_or("the pull")
            ),
        ),
        (DenialReason::NoResourcePolicy, false) => {
            let mut f = Finding::new(
                Code::REGISTRY_DENIED_RESOURCE_POLICY,
                format!(
                    "the repository policy does not allow {who} to {}",
                    d.action.as_deref().unwrap_or("pull")
                ),
            );
            if let Some(role) = principal.as_deref().and_then(denied::role_arn_of) {
                f = f.fix(format!(
                    "Add this statement to the policy of repository {} (in account {}):\n{}",
                    ctx.image.repository,
                    ctx.image
                        .ecr
                        .as_ref()
                        .map(|e| e.account.as_str())
                        .unwrap_or("?"),
                    repository_policy_statement(&role)
                ));
            }
            f
        }
        (DenialReason::Unspecified, false) => {
            Finding::new(Code::REGISTRY_DENIED, format!("{}: {text}", err.host))
        }
    };
    f.with_opt("principal", principal)
        .with_opt("action", d.action.clone())
        .with_opt("resource", d.resource.clone())
}

/// What the status and the registry's codes say when its words named no cause.
fn by_status(err: &StatusError, text: &str, ctx: &RegistryContext<'_>) -> Finding {
    let host = &err.host;
    match (err.status, err.request) {
        (401, Request::Manifest | Request::Blob)
            if insufficient_scope(err.challenge.as_deref()) =>
        {
            insufficient_scope_finding(host, text, ctx)
        }
        (401, _) => unauthorized_finding(host, text, ctx),
        (403, Request::Blob) => Finding::new(
            Code::LAYER_DENIED,
            format!("the manifest is readable but the layer download is denied: HTTP 403 {text}"),
        ),
        (403, _) => Finding::new(Code::REGISTRY_DENIED, format!("{host}: HTTP 403 {text}")),
        _ if err.has(&ErrorCode::Denied) => {
            Finding::new(Code::REGISTRY_DENIED, format!("{host}: {text}"))
        }
        (_, Request::Manifest)
            if err.has(&ErrorCode::NameUnknown) || ctx.repository_exists == Some(false) =>
        {
            repository_not_found(err.has(&ErrorCode::NameUnknown), ctx)
        }
        (404, Request::Manifest) => {
            let reference = ctx.image.manifest_reference();
            Finding::new(
                Code::MANIFEST_NOT_FOUND,
                format!(
                    "{} {reference} not found in repository {} (on {})",
                    if reference.contains(':') {
                        "digest"
                    } else {
                        "tag"
                    },
                    ctx.image.repository,
                    ctx.image.registry
                ),
            )
            .with("reference", reference.to_string())
            .with_opt("repository_exists", ctx.repository_exists)
        }
        _ => Finding::new(
            Code::REGISTRY_ERROR,
            format!(
                "{host} answered HTTP {} to {}: {text}",
                err.status,
                err.request.as_str()
            ),
        ),
    }
}

/// The token service took the credentials (or none) and granted no pull: the account lacks
/// access, the repository is private, or it does not exist. Its summary must not say the
/// credentials were rejected, and its fix must not be a new password.
fn insufficient_scope_finding(host: &str, text: &str, ctx: &RegistryContext<'_>) -> Finding {
    let repository = &ctx.image.repository;
    Finding::new(
        Code::REGISTRY_UNAUTHORIZED,
        match ctx.credentials {
            CredentialsUsed::None => format!(
                "{host} allows no anonymous pull of {repository}: its token service granted no pull on it (HTTP 401 insufficient_scope: {text})"
            ),
            c => format!(
                "{host}'s token service accepted {} but granted no pull on {repository} (HTTP 401 insufficient_scope: {text})",
                c.describe()
            ),
        },
    )
    .with("challenge_error", "insufficient_scope")
    .fix(ctx.credentials.insufficient_scope_fix(ctx.image))
}

/// A 401: the credentials offered (or none) do not open the registry.
fn unauthorized_finding(host: &str, text: &str, ctx: &RegistryContext<'_>) -> Finding {
    let mut f = Finding::new(
        Code::REGISTRY_UNAUTHORIZED,
        match ctx.credentials {
            CredentialsUsed::None => {
                format!("{host} requires credentials and none apply: HTTP 401 {text}")
            }
            c => format!("{host} rejected {}: HTTP 401 {text}", c.describe()),
        },
    )
    .fix(ctx.credentials.unauthorized_fix(ctx.image));
    if let (CredentialsUsed::PodIdentity { token: Some(t), .. }, Some(e)) =
        (ctx.credentials, &ctx.image.ecr)
    {
        f = f
            .with("token_region", t.region.clone())
            .with("registry_region", e.region.clone());
    }
    f
}

/// The repository is missing, known by the manifest's own `NAME_UNKNOWN` (`by_name`) or by a
/// `MANIFEST_UNKNOWN` followed by the repository's tag list answering `NAME_UNKNOWN`; a
/// pull-through cache prefix gets its own fix.
fn repository_not_found(by_name: bool, ctx: &RegistryContext<'_>) -> Finding {
    let repository = &ctx.image.repository;
    let how = if by_name {
        "the manifest request answered NAME_UNKNOWN"
    } else {
        "the manifest request answered MANIFEST_UNKNOWN and the repository's tag list NAME_UNKNOWN"
    };
    let f = Finding::new(
        Code::REPOSITORY_NOT_FOUND,
        format!(
            "repository {repository} does not exist on {} ({how})",
            ctx.image.registry
        ),
    )
    .with("repository", repository.clone())
    .with("known_by", how);
    let prefix = repository.split('/').next().unwrap_or("");
    if !(repository.contains('/') && PULL_THROUGH_PREFIXES.contains(&prefix)) {
        return f;
    }
    f.with("pull_through_cache_prefix", prefix.to_string()).fix(format!(
        "The prefix `{prefix}/` looks like a pull-through cache rule: check that the rule exists in this registry's region and that the identity may `ecr:CreateRepository` and `ecr:BatchImportUpstreamImage`; otherwise fix the repository name."
    ))
}
