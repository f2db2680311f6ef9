//! Stage 3, ECR token: GetAuthorizationToken in the registry's own region.
//!
//! ECR tokens are region-bound, so the token is minted where the image lives, not where the
//! pod runs; one token per (partition, region) serves every image of a run. The token is a
//! Basic credential `AWS:<password>`; the password of real ECR is itself base64 JSON whose
//! `expiration` we decode for the report (never its `payload` or `datakey`).

use aws_config::{Region, SdkConfig};
use base64::Engine as _;
use serde::Deserialize;

use crate::aws::{self, AwsFailure};
use crate::reference::Partition;
use crate::secret::Secret;

/// Plain data of the report, produced here.
pub use crate::report::{EcrTokenInfo, PasswordFormat};

/// Where a token is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    pub partition: Partition,
    pub region: String,
}

/// A token ready for use as `Authorization: Basic <authorization>`.
#[derive(Debug, Clone)]
pub struct EcrToken {
    pub authorization: Secret<String>,
    pub info: EcrTokenInfo,
    /// The `Date` of the ECR API's answer, Unix seconds.
    pub server_date: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("the authorization token is not base64")]
    NotBase64,
    #[error("the decoded authorization token is not `user:password`")]
    NoSeparator,
}

/// The parts of a decoded authorization token.
#[derive(Debug, Clone)]
pub struct DecodedToken {
    pub user: String,
    pub password: Secret<String>,
    pub format: PasswordFormat,
    pub password_expiration: Option<i64>,
}

#[derive(Deserialize)]
struct EcrPassword {
    payload: String,
    datakey: String,
    expiration: i64,
}

/// Decodes `base64(user:password)` and, for the real ECR format, the password's expiry.
pub fn decode_authorization_token(
    token: &Secret<String>,
) -> Result<DecodedToken, TokenFormatError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64
        .decode(token.expose().trim())
        .map_err(|_| TokenFormatError::NotBase64)?;
    let raw = String::from_utf8(raw).map_err(|_| TokenFormatError::NotBase64)?;
    let (user, password) = raw.split_once(':').ok_or(TokenFormatError::NoSeparator)?;
    let parsed = b64
        .decode(password)
        .ok()
        .and_then(|json| serde_json::from_slice::<EcrPassword>(&json).ok())
        .filter(|p| !p.payload.is_empty() && !p.datakey.is_empty());
    Ok(DecodedToken {
        user: user.to_string(),
        password: Secret::new(password.to_string()),
        format: if parsed.is_some() {
            PasswordFormat::EcrDataKey
        } else {
            PasswordFormat::Opaque
        },
        password_expiration: parsed.map(|p| p.expiration),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("{0}")]
    Api(AwsFailure),
    #[error("GetAuthorizationToken returned no authorization data")]
    Empty,
    #[error("GetAuthorizationToken returned an unusable token")]
    Format(#[source] TokenFormatError),
}

/// The DNS suffix of a partition's public API endpoints.
pub(crate) fn api_suffix(p: Partition) -> &'static str {
    match p {
        Partition::AwsCn => "amazonaws.com.cn",
        Partition::AwsIso => "c2s.ic.gov",
        Partition::AwsIsoB => "sc2s.sgov.gov",
        Partition::AwsIsoE => "cloud.adc-e.uk",
        Partition::AwsIsoF => "csp.hci.ic.gov",
        Partition::AwsEusc => "amazonaws.eu",
        Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
    }
}

/// A per-image failure of the ECR API's BatchGetImage (`KmsError`, `ImageNotFound`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFailure {
    pub code: String,
    pub reason: Option<String>,
}

pub(crate) fn client(
    sdk: &SdkConfig,
    region: &str,
    fips: bool,
    dates: &aws::ServerDates,
) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::config::Builder::from(sdk)
        .region(Region::new(region.to_string()))
        .use_fips(fips)
        .interceptor(dates.clone())
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

/// Asks the ECR API what the registry would not say: BatchGetImage reports per-image failure
/// codes such as `KmsError` that the registry protocol turns into a bare error. A second
/// channel, used only after the registry failed; it needs `ecr:BatchGetImage`, which a puller
/// has. `None` when the API reports no failure or cannot be asked.
pub async fn image_failure(
    sdk: &SdkConfig,
    key: &TokenKey,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Option<ImageFailure> {
    let id = aws_sdk_ecr::types::ImageIdentifier::builder();
    let id = match (digest, tag) {
        (Some(d), _) => id.image_digest(d),
        (None, Some(t)) => id.image_tag(t),
        (None, None) => id.image_tag("latest"),
    };
    let out = client(sdk, &key.region, false, &aws::ServerDates::default())
        .batch_get_image()
        .repository_name(repository)
        .image_ids(id.build())
        .send()
        .await
        .map_err(|e| tracing::debug!(error = %aws_sdk_ecr::error::DisplayErrorContext(&e), "BatchGetImage"))
        .ok()?;
    let f = out.failures().first()?;
    Some(ImageFailure {
        code: f.failure_code()?.as_str().to_string(),
        reason: f.failure_reason().map(str::to_string),
    })
}

/// Calls GetAuthorizationToken in `key.region` with the run's credentials.
pub async fn fetch(sdk: &SdkConfig, key: &TokenKey, fips: bool) -> Result<EcrToken, EcrError> {
    let api_endpoint = aws::endpoint_host(
        "ECR",
        format!(
            "api.ecr{}.{}.{}",
            if fips { "-fips" } else { "" },
            key.region,
            api_suffix(key.partition)
        ),
    );
    let dates = aws::ServerDates::default();
    let out = client(sdk, &key.region, fips, &dates)
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| {
            EcrError::Api(aws::from_sdk(
                "GetAuthorizationToken",
                api_endpoint.clone(),
                &e,
            ))
        })?;
    let data = out.authorization_data().first().ok_or(EcrError::Empty)?;
    let authorization = Secret::new(
        data.authorization_token()
            .ok_or(EcrError::Empty)?
            .to_string(),
    );
    let decoded = decode_authorization_token(&authorization).map_err(EcrError::Format)?;
    Ok(EcrToken {
        info: EcrTokenInfo {
            region: key.region.clone(),
            partition: key.partition.to_string(),
            api_endpoint,
            proxy_endpoint: data.proxy_endpoint().map(str::to_string),
            expires_at: data.expires_at().map(|t| t.secs()),
            user: decoded.user,
            password_format: decoded.format,
            password_expiration: decoded.password_expiration,
        },
        authorization,
        server_date: dates.last(),
    })
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn decodes_the_real_ecr_format() {
        let password = b64(
            r#"{"payload":"c2VjcmV0","datakey":"a2V5","version":"2","type":"DATA_KEY","expiration":1764300000}"#,
        );
        let t = Secret::new(b64(&format!("AWS:{password}")));
        let d = decode_authorization_token(&t).unwrap();
        assert_eq!(d.user, "AWS");
        assert_eq!(d.format, PasswordFormat::EcrDataKey);
        assert_eq!(d.password_expiration, Some(1764300000));
        assert_eq!(d.password.expose(), &password);
    }

    #[test]
    fn an_unusable_token_tells_its_reason_once() {
        let reason = decode_authorization_token(&Secret::new("%%%".into())).unwrap_err();
        let chain = crate::error_chain(&EcrError::Format(reason.clone()));
        assert_eq!(
            chain,
            format!("GetAuthorizationToken returned an unusable token: {reason}")
        );
        assert_eq!(chain.matches(&reason.to_string()).count(), 1, "{chain}");
    }

    #[test]
    fn decodes_the_emulator_format() {
        let t = Secret::new("QVdTOjgxODE0MDU2Nzc3Ny1hdXRoLXRva2Vu".to_string());
        let d = decode_authorization_token(&t).unwrap();
        assert_eq!(d.user, "AWS");
        assert_eq!(d.password.expose(), "818140567777-auth-token");
        assert_eq!(d.format, PasswordFormat::Opaque);
        assert_eq!(d.password_expiration, None);
    }

    #[test]
    fn rejects_unusable_tokens() {
        assert_eq!(
            decode_authorization_token(&Secret::new("%%%".into())).unwrap_err(),
            TokenFormatError::NotBase64
        );
        assert_eq!(
            decode_authorization_token(&Secret::new(b64("no-separator"))).unwrap_err(),
            TokenFormatError::NoSeparator
        );
    }
}
