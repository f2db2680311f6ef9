//! Shared AWS plumbing: the SDK configuration every stage uses, and the conversion of SDK
//! errors into [`AwsFailure`], a plain value the diagnosis module can read without the SDK.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::RequestId;
use serde::Serialize;

/// How an AWS call failed, in the terms the diagnosis needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsFailureKind {
    /// AWS answered with an error (`code` and `message` set).
    Service,
    /// No connection: DNS, connect or TLS failure.
    Unreachable,
    /// A connect, read or attempt timeout.
    Timeout,
    /// Anything else (a malformed response, a request that could not be built).
    Other,
}

/// A failed AWS call, reduced to plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsFailure {
    pub operation: &'static str,
    pub kind: AwsFailureKind,
    pub code: Option<String>,
    pub message: Option<String>,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    /// The endpoint host the SDK was configured to call.
    pub endpoint: String,
    /// The whole error chain as text, for the cases no rule names.
    pub detail: String,
    /// The `Date` header of an error response, Unix seconds, to detect clock skew.
    pub server_date: Option<i64>,
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, "{} failed: {c}: {m}", self.operation),
            (Some(c), None) => write!(f, "{} failed: {c}", self.operation),
            _ => write!(f, "{} failed: {}", self.operation, self.detail),
        }
    }
}

/// Converts an SDK operation error.
pub fn from_sdk<E>(
    operation: &'static str,
    endpoint: String,
    err: &SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
) -> AwsFailure
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let raw = err.raw_response();
    let (kind, code, message) = match err {
        SdkError::ServiceError(se) => (
            AwsFailureKind::Service,
            se.err().code().map(str::to_string),
            se.err().message().map(str::to_string),
        ),
        SdkError::TimeoutError(_) => (AwsFailureKind::Timeout, None, None),
        SdkError::DispatchFailure(d) if d.is_timeout() => (AwsFailureKind::Timeout, None, None),
        SdkError::DispatchFailure(d) if d.is_io() => (AwsFailureKind::Unreachable, None, None),
        _ => (AwsFailureKind::Other, None, None),
    };
    AwsFailure {
        operation,
        kind,
        code,
        message,
        http_status: raw.map(|r| r.status().as_u16()),
        request_id: err.request_id().map(str::to_string),
        endpoint,
        detail: DisplayErrorContext(err).to_string(),
        server_date: raw
            .and_then(|r| r.headers().get("date"))
            .and_then(parse_http_date),
    }
}

/// Converts a credential-provider failure. The provider wraps the STS error, so its code is
/// recovered by walking the source chain to the `AssumeRoleWithWebIdentity` error itself.
pub fn from_credentials_error(endpoint: String, err: &(dyn StdError + 'static)) -> AwsFailure {
    use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
    let mut code = None;
    let mut message = None;
    let mut kind = AwsFailureKind::Other;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(sts) = e.downcast_ref::<AssumeRoleWithWebIdentityError>() {
            code = sts.code().map(str::to_string);
            message = sts.message().map(str::to_string);
            kind = AwsFailureKind::Service;
            break;
        }
        if let Some(ce) = e.downcast_ref::<aws_sdk_sts::error::ConnectorError>() {
            kind = if ce.is_timeout() {
                AwsFailureKind::Timeout
            } else if ce.is_io() {
                AwsFailureKind::Unreachable
            } else {
                kind
            };
        }
        cur = e.source();
    }
    if kind == AwsFailureKind::Other && crate::error_chain(err).contains("timed out") {
        kind = AwsFailureKind::Timeout;
    }
    AwsFailure {
        operation: "AssumeRoleWithWebIdentity",
        kind,
        code,
        message,
        http_status: None,
        request_id: None,
        endpoint,
        detail: crate::error_chain(err),
        server_date: None,
    }
}

/// Records the `Date` header of every AWS response, successful or not, so that a skewed local
/// clock is reported before it breaks request signing.
#[derive(Debug, Clone, Default)]
pub struct ServerDates(Arc<Mutex<Option<i64>>>);

impl ServerDates {
    /// The most recent `Date` seen, Unix seconds.
    pub fn last(&self) -> Option<i64> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercept for ServerDates {
    fn name(&self) -> &'static str {
        "ServerDates"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context
            .response()
            .headers()
            .get("date")
            .and_then(parse_http_date)
        {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(date);
        }
        Ok(())
    }
}

fn parse_http_date(v: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(v).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// Timeouts handed to the SDK, so that no AWS call can outlive its stage.
#[derive(Debug, Clone, Copy)]
pub struct AwsTimeouts {
    pub connect: Duration,
    pub read: Duration,
    pub operation: Duration,
}

/// Loads the SDK configuration through the standard chain (environment, profiles, web
/// identity, container endpoint, IMDS), including the standard `AWS_ENDPOINT_URL*` settings.
///
/// When no region is configured anywhere, `fallback_region` (the first image's region) is used:
/// STS needs one, and pods on OpenShift cannot learn it from IMDS.
/// The AWS SDK's retry policy, set explicitly rather than left to the SDK's defaults and the
/// environment, and reported: standard mode (exponential backoff with jitter, throttling and
/// 5xx and connection errors retried, a client-side token bucket), this many tries in all.
pub const AWS_RETRY_MODE: &str = "standard";
pub const AWS_RETRY_ATTEMPTS: u32 = 3;

pub async fn load_sdk_config(fallback_region: Option<String>, t: AwsTimeouts) -> SdkConfig {
    // The SDK's HTTPS client on rustls with ring, the binary's one crypto provider. Everything
    // that calls out (STS, ECR, SSO, instance metadata) is handed this client: without the
    // SDK's default-https-client feature, a provider built without it has none.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let providers = ProviderConfig::default().with_http_client(https.clone());
    // The standard region chain (environment, profile, instance metadata), then the fallback.
    let region = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::region::ProfileFileRegionProvider::builder()
            .configure(&providers)
            .build(),
    )
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .configure(&providers)
            .build(),
    )
    .or_else(Region::new(
        fallback_region.unwrap_or_else(|| "us-east-1".into()),
    ));
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .region(region)
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(AWS_RETRY_ATTEMPTS),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .read_timeout(t.read)
                .operation_timeout(t.operation)
                .build(),
        )
        .load()
        .await
}

/// The host an AWS service call goes to, for evidence: the standard endpoint override
/// variables if set, else the regional endpoint.
pub fn endpoint_host(service_env: &str, default_host: String) -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    var(&format!("AWS_ENDPOINT_URL_{service_env}"))
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .and_then(|u| reqwest::Url::parse(&u).ok())
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or(default_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Sat, 28 Nov 2026 01:49:09 GMT"),
            Some(1795830549)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
