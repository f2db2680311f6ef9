//! Stage 1, identity: how the AWS SDK will obtain credentials, and what the projected web
//! identity token claims.
//!
//! The claims are decoded *without* verifying the signature: the probe is not the token's
//! audience and has no business trusting it, only reporting what it says so that a trust-policy
//! mismatch can be named. The token itself never leaves this module.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::secret::Secret;

/// Plain data of the report, produced here.
pub use crate::report::{CredentialMode, TokenClaims};

/// The audience STS requires in a web identity token.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// The credential-related environment, read once. Keeping it a plain value makes mode
/// detection testable without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct IdentityEnv {
    pub role_arn: Option<String>,
    pub token_file: Option<PathBuf>,
    pub session_name: Option<String>,
    pub access_key_set: bool,
    pub container_endpoint_set: bool,
}

impl IdentityEnv {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        IdentityEnv {
            role_arn: var("AWS_ROLE_ARN"),
            token_file: var("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from),
            session_name: var("AWS_ROLE_SESSION_NAME"),
            access_key_set: var("AWS_ACCESS_KEY_ID").is_some(),
            container_endpoint_set: var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
                || var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some(),
        }
    }

    pub fn mode(&self) -> CredentialMode {
        if self.access_key_set {
            CredentialMode::Environment
        } else if self.role_arn.is_some() && self.token_file.is_some() {
            CredentialMode::WebIdentity
        } else if self.container_endpoint_set {
            CredentialMode::ContainerEndpoint
        } else {
            CredentialMode::DefaultChain
        }
    }

    /// The web identity variables that are absent, for a finding that names them.
    pub fn missing_web_identity_vars(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.role_arn.is_none() {
            missing.push("AWS_ROLE_ARN");
        }
        if self.token_file.is_none() {
            missing.push("AWS_WEB_IDENTITY_TOKEN_FILE");
        }
        missing
    }
}

/// The `kubernetes.io` claim of a projected ServiceAccount token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
struct K8sClaim {
    namespace: Option<String>,
    serviceaccount: Option<NamedRef>,
    pod: Option<NamedRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
struct NamedRef {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    #[serde(rename = "kubernetes.io")]
    k8s: Option<K8sClaim>,
}

impl TokenClaims {
    /// The issuer without its scheme, as IAM uses it in condition keys and provider ARNs.
    pub fn issuer_host_path(&self) -> Option<&str> {
        self.issuer
            .as_deref()
            .map(|i| i.trim_start_matches("https://").trim_end_matches('/'))
    }
}

/// Why a token is not a JWT we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("the file is empty")]
    Empty,
    #[error("it has {0} dot-separated parts, a JWT has 3")]
    Parts(usize),
    #[error("the claims part is not base64url")]
    Base64,
    #[error("the claims part is not a JSON object: {reason}")]
    Json { reason: String },
}

/// Decodes the claims of a compact JWT without verifying its signature.
pub fn decode_claims(token: &Secret<String>) -> Result<TokenClaims, MalformedToken> {
    let raw = token.expose().trim();
    if raw.is_empty() {
        return Err(MalformedToken::Empty);
    }
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 {
        return Err(MalformedToken::Parts(parts.len()));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| MalformedToken::Base64)?;
    // Only the error's category is kept: serde's message could quote token content.
    let claims: RawClaims = serde_json::from_slice(&bytes).map_err(|e| MalformedToken::Json {
        reason: format!("{:?} error", e.classify()),
    })?;
    let k8s = claims.k8s.unwrap_or_default();
    Ok(TokenClaims {
        issuer: claims.iss,
        subject: claims.sub,
        audiences: match claims.aud {
            None => vec![],
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
        },
        expires_at: claims.exp,
        issued_at: claims.iat,
        not_before: claims.nbf,
        namespace: k8s.namespace,
        service_account: k8s.serviceaccount.and_then(|s| s.name),
        pod: k8s.pod.and_then(|p| p.name),
    })
}

/// A problem with the token that is certain before asking STS. Each maps to one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenProblem {
    Unreadable {
        path: PathBuf,
        reason: String,
        uid: Option<u32>,
    },
    Malformed {
        path: PathBuf,
        reason: MalformedToken,
    },
    Expired {
        expires_at: i64,
        now: i64,
    },
    NotYetValid {
        not_before: i64,
        now: i64,
    },
    AudienceMismatch {
        audiences: Vec<String>,
    },
}

/// Local checks on decoded claims, at time `now` (Unix seconds).
pub fn check_claims(claims: &TokenClaims, now: i64) -> Vec<TokenProblem> {
    let mut problems = Vec::new();
    if let Some(exp) = claims.expires_at
        && exp <= now
    {
        problems.push(TokenProblem::Expired {
            expires_at: exp,
            now,
        });
    }
    if let Some(nbf) = claims.not_before
        && nbf > now
    {
        problems.push(TokenProblem::NotYetValid {
            not_before: nbf,
            now,
        });
    }
    if !claims.audiences.iter().any(|a| a == STS_AUDIENCE) {
        problems.push(TokenProblem::AudienceMismatch {
            audiences: claims.audiences.clone(),
        });
    }
    problems
}

/// The result of the identity stage.
#[derive(Debug, Clone)]
pub struct IdentityInspection {
    pub mode: CredentialMode,
    pub claims: Option<TokenClaims>,
    pub problems: Vec<TokenProblem>,
}

/// Reads and checks the token the SDK will present. The token is dropped before returning.
pub fn inspect(env: &IdentityEnv, now: i64) -> IdentityInspection {
    let mode = env.mode();
    let Some(path) = env
        .token_file
        .as_deref()
        .filter(|_| mode == CredentialMode::WebIdentity)
    else {
        return IdentityInspection {
            mode,
            claims: None,
            problems: vec![],
        };
    };
    match read_token(path) {
        Err(e) => IdentityInspection {
            mode,
            claims: None,
            problems: vec![TokenProblem::Unreadable {
                path: path.to_path_buf(),
                reason: io_reason(&e),
                uid: current_uid(),
            }],
        },
        Ok(token) => match decode_claims(&token) {
            Err(reason) => IdentityInspection {
                mode,
                claims: None,
                problems: vec![TokenProblem::Malformed {
                    path: path.to_path_buf(),
                    reason,
                }],
            },
            Ok(claims) => IdentityInspection {
                mode,
                problems: check_claims(&claims, now),
                claims: Some(claims),
            },
        },
    }
}

/// Largest token file read. STS takes a web identity token of at most 20,000 characters; a
/// projected ServiceAccount token is about 1 KiB. More is not a token, and is not read whole.
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

fn read_token(path: &Path) -> io::Result<Secret<String>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TOKEN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "over {} KiB, the most a token file is read; no web identity token is this long",
                MAX_TOKEN_BYTES >> 10
            ),
        ));
    }
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => e.to_string(),
    }
}

/// The effective uid, read from the owner of `/proc/self`: a permission problem on a projected
/// token is explained by the uid the pod runs as.
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Claims as report evidence (never the token).
pub fn claims_evidence(claims: &TokenClaims) -> BTreeMap<String, serde_json::Value> {
    let mut ev = BTreeMap::new();
    if let Some(i) = &claims.issuer {
        ev.insert("iss".into(), i.clone().into());
    }
    if let Some(s) = &claims.subject {
        ev.insert("sub".into(), s.clone().into());
    }
    ev.insert("aud".into(), claims.audiences.clone().into());
    ev
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> Secret<String> {
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        Secret::new(format!(
            "{}.{}.{}",
            e(br#"{"alg":"RS256","kid":"k"}"#),
            e(claims.to_string().as_bytes()),
            e(b"signature")
        ))
    }

    #[test]
    fn decodes_a_projected_service_account_token() {
        let t = jwt(serde_json::json!({
            "aud": ["sts.amazonaws.com"], "exp": 2000, "iat": 1000, "nbf": 1000,
            "iss": "https://oidc.op1.openshiftapps.com/abc",
            "sub": "system:serviceaccount:consultingfirm:naming-server",
            "kubernetes.io": {"namespace": "consultingfirm",
                "pod": {"name": "p-1", "uid": "u"}, "serviceaccount": {"name": "naming-server", "uid": "u"}}
        }));
        let c = decode_claims(&t).unwrap();
        assert_eq!(c.issuer_host_path(), Some("oidc.op1.openshiftapps.com/abc"));
        assert_eq!(c.audiences, vec!["sts.amazonaws.com"]);
        assert_eq!(
            (c.expires_at, c.issued_at, c.not_before),
            (Some(2000), Some(1000), Some(1000))
        );
        assert_eq!(c.namespace.as_deref(), Some("consultingfirm"));
        assert_eq!(c.service_account.as_deref(), Some("naming-server"));
        assert_eq!(c.pod.as_deref(), Some("p-1"));
        assert!(check_claims(&c, 1500).is_empty());
    }

    #[test]
    fn a_single_string_audience_is_accepted() {
        let c = decode_claims(&jwt(serde_json::json!({"aud": "sts.amazonaws.com"}))).unwrap();
        assert_eq!(c.audiences, vec!["sts.amazonaws.com"]);
    }

    #[test]
    fn flags_expiry_not_before_and_audience() {
        let c = decode_claims(&jwt(
            serde_json::json!({"aud": ["https://kubernetes.default.svc"], "exp": 100, "nbf": 300}),
        ))
        .unwrap();
        let p = check_claims(&c, 200);
        assert_eq!(
            p,
            vec![
                TokenProblem::Expired {
                    expires_at: 100,
                    now: 200
                },
                TokenProblem::NotYetValid {
                    not_before: 300,
                    now: 200
                },
                TokenProblem::AudienceMismatch {
                    audiences: vec!["https://kubernetes.default.svc".into()]
                },
            ]
        );
        let c = decode_claims(&jwt(
            serde_json::json!({"aud": "sts.amazonaws.com", "exp": 200}),
        ))
        .unwrap();
        assert_eq!(
            check_claims(&c, 200),
            vec![TokenProblem::Expired {
                expires_at: 200,
                now: 200
            }]
        );
    }

    #[test]
    fn rejects_what_is_not_a_jwt_without_quoting_it() {
        let s = |v: &str| Secret::new(v.to_string());
        assert_eq!(decode_claims(&s("")), Err(MalformedToken::Empty));
        assert_eq!(
            decode_claims(&s("secretvalue")),
            Err(MalformedToken::Parts(1))
        );
        assert_eq!(decode_claims(&s("a.b!!.c")), Err(MalformedToken::Base64));
        let e = decode_claims(&s("a.c2VjcmV0dmFsdWU.c")).unwrap_err();
        assert!(matches!(e, MalformedToken::Json { .. }));
        assert!(!e.to_string().contains("secretvalue"));
    }

    #[test]
    fn mode_follows_the_default_chain_order() {
        let mut env = IdentityEnv::default();
        assert_eq!(env.mode(), CredentialMode::DefaultChain);
        assert_eq!(
            env.missing_web_identity_vars(),
            vec!["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
        );
        env.role_arn = Some("arn:aws:iam::1:role/r".into());
        assert_eq!(
            env.mode(),
            CredentialMode::DefaultChain,
            "half-configured web identity is not used"
        );
        assert_eq!(
            env.missing_web_identity_vars(),
            vec!["AWS_WEB_IDENTITY_TOKEN_FILE"]
        );
        env.token_file = Some("/t".into());
        assert_eq!(env.mode(), CredentialMode::WebIdentity);
        env.access_key_set = true;
        assert_eq!(env.mode(), CredentialMode::Environment);
    }

    #[test]
    fn a_token_file_over_the_cap_is_unreadable_and_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "a".repeat(MAX_TOKEN_BYTES + 1)).unwrap();
        let env = IdentityEnv {
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            token_file: Some(path.clone()),
            ..Default::default()
        };
        match &inspect(&env, 0).problems[..] {
            [TokenProblem::Unreadable { reason, .. }] => {
                assert!(reason.contains("over 64 KiB"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // At the cap it is read, and judged as a token.
        std::fs::write(&path, "a".repeat(MAX_TOKEN_BYTES)).unwrap();
        assert!(matches!(
            &inspect(&env, 0).problems[..],
            [TokenProblem::Malformed { .. }]
        ));
    }

    #[test]
    fn an_unreadable_token_names_path_and_reason() {
        let env = IdentityEnv {
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            token_file: Some("/nonexistent/token".into()),
            ..Default::default()
        };
        let i = inspect(&env, 0);
        match &i.problems[..] {
            [TokenProblem::Unreadable { path, reason, uid }] => {
                assert_eq!(path, Path::new("/nonexistent/token"));
                assert_eq!(reason, "no such file");
                assert!(uid.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
