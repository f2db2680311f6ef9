//! Logging in: the `/v2/` challenge, the Bearer token exchange or Basic credentials, and the
//! logins one run (or `serve --watch`, across runs) shares between images.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::session::Session;
use super::transport::{self, Auth, Transport, TransportError, host_of};
use super::{RegistryError, Request, blob, join, read_capped, read_error};
use crate::secret::Secret;

/// What the `/v2/` exchange showed.
#[derive(Debug, Clone)]
pub struct AuthCheck {
    /// Status of the unauthenticated `/v2/` (ECR: 401 with a Basic challenge).
    pub anonymous_status: u16,
    pub challenge: Option<String>,
    pub scheme: &'static str,
    /// The registry's `Date` header, Unix seconds.
    pub server_date: Option<i64>,
    pub served_by: String,
}

/// Parses `Bearer realm="…",service="…"` into (scheme, params).
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let v = v.trim_start();
        let (value, tail) = if let Some(q) = v.strip_prefix('"') {
            quoted_string(q)
        } else {
            // A token ends at the comma; the white space before it is the list's, not the value's.
            let (value, tail) = v.split_once(',').unwrap_or((v, ""));
            (value.trim_end_matches([' ', '\t']).to_string(), tail)
        };
        params.push((k.trim().to_ascii_lowercase(), value));
        rest = tail.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// RFC 7230's `quoted-string` after its opening quote: the value with each quoted-pair
/// (`\"`, `\\`) unescaped, and what follows the closing quote (nothing if it never closes).
fn quoted_string(q: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &q[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c => value.push(c),
        }
    }
    (value, "")
}

fn server_date(r: &reqwest::Response) -> Option<i64> {
    let v = r.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    let t = httpdate::parse_http_date(v).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// The `/v2/` challenge, then credentials: the ECR token as Basic when there is one, an
/// anonymous Bearer token when the registry asks for one, nothing otherwise. With credentials,
/// `/v2/` is asked again to prove they open the registry before any manifest is requested.
pub async fn login<'a>(
    transport: &'a Transport,
    base: &Url,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Session<'a>, AuthCheck), RegistryError> {
    let (session, check, _) = login_timed(transport, base, repository, basic).await?;
    Ok((session, check))
}

/// [`login`], and for a Bearer token how long the registry said it is good for.
async fn login_timed<'a>(
    transport: &'a Transport,
    base: &Url,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Session<'a>, AuthCheck, Option<Duration>), RegistryError> {
    let v2 = join(base, "v2/");
    let first = transport.get(v2.clone(), &Auth::Anonymous, None).await?;
    let anonymous_status = first.response.status().as_u16();
    let date = server_date(&first.response);
    let challenge = first
        .response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let served_by = first.served_by.clone();
    drop(first);
    // A Bearer registry (Docker Hub, GHCR, Quay, Harbor) wants the token exchange first, with
    // the credentials sent to its realm, as docker and containerd do; a Basic one (ECR) takes
    // them on every request.
    let (auth, bearer_for) = match (basic, &challenge) {
        (_, Some(c)) if anonymous_status == 401 && parse_challenge(c).0 == "bearer" => {
            let (token, expires_in) = bearer_token(transport, base, c, repository, basic).await?;
            (token, Some(expires_in))
        }
        (Some(b), _) => (Auth::Basic(b.clone()), None),
        _ => (Auth::Anonymous, None),
    };
    if let Auth::Basic(_) = auth {
        let second = transport.get(v2, &auth, None).await?;
        if !second.response.status().is_success() {
            return Err(read_error(Request::Login, second).await.into());
        }
    }
    let check = AuthCheck {
        anonymous_status,
        challenge,
        scheme: auth.scheme(),
        server_date: date,
        served_by,
    };
    Ok((
        Session {
            transport,
            base: base.clone(),
            repository: repository.to_string(),
            auth,
        },
        check,
        bearer_for,
    ))
}

/// A Bearer token's life when the registry does not say (the token spec's default).
const BEARER_DEFAULT_LIFE: Duration = Duration::from_secs(60);

/// Until when a login made at `now` is trusted without asking `/v2/` again: a Bearer token
/// for half its `expires_in`; a Basic or anonymous one for `keep` (`None`: for as long as the
/// [`Logins`] lives, i.e. one run).
fn login_until(
    auth: &Auth,
    now: std::time::Instant,
    bearer_for: Option<Duration>,
    keep: Option<Duration>,
) -> Option<std::time::Instant> {
    match auth {
        Auth::Bearer(_) => Some(now + bearer_for.unwrap_or(BEARER_DEFAULT_LIFE) / 2),
        _ => keep.map(|k| now + k),
    }
}

/// Logins shared by the images of one run: one `/v2/` challenge and one credential check per
/// (endpoint, credentials), not one per image (16 images made 32 requests and about 55 ms each
/// on the local stack). Only a success is shared: an image whose login failed tries again on
/// its own, so every failure in the report is that image's own. A Bearer token is scoped to
/// one repository, so it is shared only with images of that repository.
///
/// `serve --watch` keeps one across runs ([`Logins::across_runs`]): a Bearer token is then
/// reused until half its `expires_in`, a Basic login for a bounded time (the ECR token behind
/// it is itself replaced at half its life, and a new token is a new key), and a pull that
/// fails after a reused login forgets it ([`Logins::forget`]), so the retry logs in afresh.
#[derive(Default)]
pub struct Logins {
    cells: std::sync::Mutex<std::collections::HashMap<LoginKey, LoginCell>>,
    /// How long a Basic or anonymous login is trusted; `None`: as long as this value lives.
    keep: Option<Duration>,
}

/// (endpoint URL, digest of the credentials or empty for none)
type LoginKey = (String, String);
type LoginCell = std::sync::Arc<tokio::sync::OnceCell<Shared>>;

#[derive(Clone)]
struct Shared {
    repository: String,
    auth: Auth,
    check: AuthCheck,
    until: Option<std::time::Instant>,
}

impl Logins {
    /// Logins kept across runs, a Basic or anonymous one for `keep` at most.
    pub fn across_runs(keep: Duration) -> Logins {
        Logins {
            keep: Some(keep),
            ..Default::default()
        }
    }

    /// The credentials as a key: a digest, so the map holds no secret.
    fn key(base: &Url, basic: Option<&Secret<String>>) -> LoginKey {
        let who = basic.map_or_else(String::new, |b| blob::sha256_digest(b.expose().as_bytes()));
        (base.to_string(), who)
    }

    /// Drops the login of `base` with `basic`, so the next pull asks `/v2/` again.
    pub fn forget(&self, base: &Url, basic: Option<&Secret<String>>) {
        self.cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key(base, basic));
    }

    pub async fn login<'a>(
        &self,
        transport: &'a Transport,
        base: &Url,
        repository: &str,
        basic: Option<&Secret<String>>,
    ) -> Result<(Session<'a>, AuthCheck), RegistryError> {
        let now = std::time::Instant::now();
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            // Logins past their time go (one being made stays), and with them the keys of
            // ECR tokens replaced since.
            cells.retain(|_, c| c.get().is_none_or(|s| s.until.is_none_or(|u| now < u)));
            cells.entry(Self::key(base, basic)).or_default().clone()
        };
        let shared = cell
            .get_or_try_init(|| async {
                let (session, check, bearer_for) =
                    login_timed(transport, base, repository, basic).await?;
                Ok::<_, RegistryError>(Shared {
                    repository: repository.to_string(),
                    until: login_until(&session.auth, now, bearer_for, self.keep),
                    auth: session.auth,
                    check,
                })
            })
            .await?;
        if matches!(shared.auth, Auth::Bearer(_)) && shared.repository != repository {
            return login(transport, base, repository, basic).await;
        }
        Ok((
            Session {
                transport,
                base: base.clone(),
                repository: repository.to_string(),
                auth: shared.auth.clone(),
            },
            shared.check.clone(),
        ))
    }
}

/// The token exchange of Docker Hub, Quay, GHCR and other Bearer registries: a pull-scoped
/// token from the challenge's realm, anonymous or with the Basic credentials of a pull secret
/// (the distribution token spec's "Requesting a Token").
async fn bearer_token(
    transport: &Transport,
    base: &Url,
    challenge: &str,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Auth, Duration), RegistryError> {
    let (_, params) = parse_challenge(challenge);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let realm = get("realm").and_then(|r| Url::parse(r).ok());
    let Some(mut url) = realm else {
        return Ok((Auth::Anonymous, BEARER_DEFAULT_LIFE));
    };
    // The realm is the registry's word: the same rule as for its redirects.
    transport::check_hop(base, &url).map_err(|reason| TransportError::RefusedHop {
        from: host_of(base),
        to: host_of(&url),
        reason,
    })?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = get("service") {
            q.append_pair("service", s);
        }
        q.append_pair("scope", &format!("repository:{repository}:pull"));
    }
    let host = host_of(&url);
    let auth = basic.map_or(Auth::Anonymous, |b| Auth::Basic(b.clone()));
    let fetched = transport.get_realm(url, &auth, base).await?;
    if !fetched.response.status().is_success() {
        return Err(read_error(Request::Token, fetched).await.into());
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let unusable = |reason| RegistryError::TokenFormat {
        host: host.clone(),
        reason,
    };
    // Registry tokens are a few KiB (Docker Hub's JWTs, ECR's are ~2 KiB): 64 KiB is generous.
    let body = read_capped(fetched.response, 64 << 10)
        .await
        .ok_or_else(|| unusable("the answer is larger than the 64 KiB accepted"))?;
    let answer = serde_json::from_slice::<TokenResponse>(&body)
        .map_err(|_| unusable("the answer is not JSON with a `token` or `access_token`"))?;
    let life = answer
        .expires_in
        .map_or(BEARER_DEFAULT_LIFE, Duration::from_secs);
    let token = answer
        .token
        .or(answer.access_token)
        .ok_or_else(|| unusable("the answer is not JSON with a `token` or `access_token`"))?;
    Ok((Auth::Bearer(Secret::new(token)), life))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_login_is_trusted_for_half_a_bearer_tokens_life_or_the_time_given() {
        let now = Instant::now();
        let bearer = Auth::Bearer(Secret::new("t".into()));
        let basic = Auth::Basic(Secret::new("QVdTOng=".into()));
        let h = Duration::from_secs(3600);
        assert_eq!(
            login_until(&bearer, now, Some(Duration::from_secs(300)), Some(h)),
            Some(now + Duration::from_secs(150)),
            "half of expires_in, whatever the Basic time"
        );
        assert_eq!(
            login_until(&bearer, now, None, None),
            Some(now + Duration::from_secs(30)),
            "expires_in absent: the spec's 60 s"
        );
        assert_eq!(login_until(&basic, now, None, Some(h)), Some(now + h));
        assert_eq!(
            login_until(&Auth::Anonymous, now, None, Some(h)),
            Some(now + h)
        );
        assert_eq!(login_until(&basic, now, None, None), None, "one run");
    }

    #[test]
    fn parses_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            vec![
                (
                    "realm".to_string(),
                    "https://auth.docker.io/token".to_string()
                ),
                ("service".to_string(), "registry.docker.io".to_string()),
            ]
        );
        let (s, p) = parse_challenge(
            r#"Basic realm="https://818140567777.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
        );
        assert_eq!(s, "basic");
        assert_eq!(
            p[1],
            ("service".to_string(), "ecr.amazonaws.com".to_string())
        );
        assert_eq!(parse_challenge("Basic").0, "basic");
        let (_, p) = parse_challenge("Bearer realm=unquoted, scope=x");
        assert_eq!(p[0].1, "unquoted");
        assert_eq!(p[1].1, "x");
    }

    /// Found by `challenge_round_trips`: a quoted-pair (`\"`, `\\`) ended or kept its backslash,
    /// and a token value kept the white space before the next comma.
    #[test]
    fn proptest_regression_challenge_quoted_pairs_and_list_white_space() {
        let (_, p) = parse_challenge(r#"A _="\\""#);
        assert_eq!(p, vec![("_".to_string(), "\\".to_string())]);
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token?x=\"y\"",service=registry , scope="repository:a:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            vec![
                (
                    "realm".to_string(),
                    r#"https://auth.example/token?x="y""#.to_string()
                ),
                ("service".to_string(), "registry".to_string()),
                ("scope".to_string(), "repository:a:pull".to_string()),
            ]
        );
    }
}
