//! Stage 2, STS: obtain credentials through the default chain (for a pod, web identity:
//! AssumeRoleWithWebIdentity with the projected token) and ask GetCallerIdentity who they are.
//!
//! Credentials are resolved once, here, and handed to every later AWS client as a fixed
//! provider, so a run makes one AssumeRoleWithWebIdentity call however many images it checks.

use aws_config::SdkConfig;
use aws_sdk_sts::config::{ProvideCredentials, SharedCredentialsProvider};

use crate::aws::{self, AwsFailure};

/// Plain data of the report, produced here.
pub use crate::report::Caller;

/// A successful STS stage.
#[derive(Debug, Clone)]
pub struct StsOutcome {
    pub caller: Caller,
    /// Unix seconds, when the credentials are temporary.
    pub credentials_expire_at: Option<i64>,
    /// The SDK configuration with the resolved credentials fixed in it.
    pub sdk: SdkConfig,
    /// The STS endpoint host called, and the `Date` of its answer (Unix seconds).
    pub endpoint: String,
    pub server_date: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("no credentials: the default chain found no credential source")]
    NoProvider,
    #[error("obtaining credentials failed: {0}")]
    Credentials(AwsFailure),
    #[error("{0}")]
    CallerIdentity(AwsFailure),
}

impl StsError {
    pub fn failure(&self) -> Option<&AwsFailure> {
        match self {
            StsError::NoProvider => None,
            StsError::Credentials(f) | StsError::CallerIdentity(f) => Some(f),
        }
    }
}

pub async fn run(sdk: &SdkConfig) -> Result<StsOutcome, StsError> {
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = aws::endpoint_host("STS", format!("sts.{region}.amazonaws.com"));
    let provider = sdk.credentials_provider().ok_or(StsError::NoProvider)?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| StsError::Credentials(aws::from_credentials_error(endpoint.clone(), &e)))?;
    let credentials_expire_at = creds.expiry().and_then(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64)
    });
    let sdk = sdk
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build();
    let dates = aws::ServerDates::default();
    let conf = aws_sdk_sts::config::Builder::from(&sdk)
        .interceptor(dates.clone())
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            StsError::CallerIdentity(aws::from_sdk("GetCallerIdentity", endpoint.clone(), &e))
        })?;
    let arn = out.arn().unwrap_or_default().to_string();
    let (assumed_role, session_name) = parse_assumed_role(&arn);
    Ok(StsOutcome {
        caller: Caller {
            account: out.account().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
            arn,
            assumed_role,
            session_name,
        },
        credentials_expire_at,
        sdk,
        endpoint,
        server_date: dates.last(),
    })
}

/// `arn:<partition>:sts::<acct>:assumed-role/<role>/<session>` -> (role, session).
pub fn parse_assumed_role(arn: &str) -> (Option<String>, Option<String>) {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    match resource.strip_prefix("assumed-role/") {
        Some(rest) => match rest.split_once('/') {
            Some((role, session)) => (Some(role.to_string()), Some(session.to_string())),
            None => (Some(rest.to_string()), None),
        },
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assumed_role_arns() {
        assert_eq!(
            parse_assumed_role(
                "arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/botocore-session-1"
            ),
            (
                Some("naming-server-ecr-pull".into()),
                Some("botocore-session-1".into())
            )
        );
        assert_eq!(
            parse_assumed_role("arn:aws-cn:sts::123456789012:assumed-role/r/s/with/slashes"),
            (Some("r".into()), Some("s/with/slashes".into()))
        );
        assert_eq!(
            parse_assumed_role("arn:aws:iam::123456789012:user/alice"),
            (None, None)
        );
        assert_eq!(parse_assumed_role("garbage"), (None, None));
    }
}
