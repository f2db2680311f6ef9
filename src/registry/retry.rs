//! Transient registry failures, retried honestly. The kubelet retries a failed pull with
//! backoff, so a gate that fails on one connection reset fails a rollout the kubelet would
//! pull. Only what can pass on a second try is retried (a reset or refused connection, a
//! broken-off body, an answer the status and code tables in `error` call temporary: HTTP 408,
//! 429 and 500/502/503/504, or codes such as `TOOMANYREQUESTS`), a bounded number of times
//! within the run's deadline, `Retry-After` honoured; never an answer about the credentials or
//! the image (401, 403, 404, whatever its codes), a certificate, a digest, or a timeout of our
//! own (the deadline already governs those). Every retry is kept, so the report shows
//! flakiness instead of hiding it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::RegistryError;
use super::transport::TransportError;

/// How the probe retries registry requests (reported in `retry_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first wait; doubled after each try.
    pub base: Duration,
    /// The longest wait, also for a `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Why a failure may pass on another try; `None` when it will not.
pub fn transient(e: &RegistryError) -> Option<String> {
    match e {
        RegistryError::Transport(t @ TransportError::Connect { host, .. }) => {
            Some(connect_failure(host, &crate::error_chain(t)))
        }
        RegistryError::Transport(TransportError::Other { host, .. }) => {
            Some(format!("request to {host} broke off"))
        }
        RegistryError::Status(s) if s.retryable() => {
            Some(format!("{} answered HTTP {}", s.host, s.status))
        }
        RegistryError::Interrupted {
            host,
            received,
            expected,
            ..
        } => Some(format!(
            "the body from {host} broke off after {received} of {expected} bytes"
        )),
        RegistryError::Body { host, .. } => Some(format!("reading the answer of {host} failed")),
        _ => None,
    }
}

/// What a failed connection was, read from its error chain (hyper's and the resolver's
/// words): a name that did not resolve is not a refused connection, and says so.
pub fn connect_failure(host: &str, chain: &str) -> String {
    let c = chain.to_ascii_lowercase();
    if [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "name does not resolve",
    ]
    .iter()
    .any(|m| c.contains(m))
    {
        format!("the name {host} did not resolve (DNS)")
    } else if c.contains("connection refused") {
        format!("connection to {host} refused")
    } else if c.contains("connection reset") {
        format!("connection to {host} reset")
    } else {
        format!("could not connect to {host}")
    }
}

/// The wait before try number `attempt` (1 for the first retry): the server's `Retry-After`
/// when it sent one, else exponential from `base`; at most `max_wait` either way.
pub fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = policy
        .base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    retry_after.unwrap_or(exp).min(policy.max_wait)
}

/// A retry's cause with the wait before it, so the report shows that a `Retry-After` was
/// honoured.
pub fn waited(cause: String, wait: Duration, retry_after: bool) -> String {
    format!(
        "{cause}; waited {} ms{}",
        wait.as_millis(),
        if retry_after {
            " as its Retry-After asked"
        } else {
            ""
        }
    )
}

/// The server's `Retry-After` on a 429 or 503, if it sent one.
pub fn retry_after(e: &RegistryError) -> Option<Duration> {
    e.status().and_then(|s| s.retry_after)
}

/// Runs `op` until it succeeds, fails for good, the tries are spent, or the next wait would
/// pass `deadline`. Returns the last result and the causes of the retries made.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Instant,
    mut op: F,
) -> (Result<T, RegistryError>, Vec<String>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let mut causes = Vec::new();
    let mut attempt = 1;
    loop {
        let result = op().await;
        let Err(e) = &result else {
            return (result, causes);
        };
        let Some(cause) = transient(e) else {
            return (result, causes);
        };
        if attempt >= policy.attempts {
            return (result, causes);
        }
        let wait = backoff(policy, attempt, retry_after(e));
        if Instant::now() + wait >= deadline {
            return (result, causes);
        }
        tracing::info!(cause = %cause, wait_ms = wait.as_millis() as u64, "retrying");
        causes.push(waited(cause, wait, retry_after(e).is_some()));
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> RegistryError {
        RegistryError::Status(super::super::StatusError {
            request: super::super::Request::Manifest,
            status: code,
            host: "r.example".into(),
            errors: vec![],
            challenge: None,
            body: String::new(),
            retry_after: None,
        })
    }

    /// Issue 30 point 5: a name that does not resolve is not "refused or reset". The chains
    /// are hyper-util's and the system resolver's words.
    #[test]
    fn a_connect_failure_says_what_failed() {
        for (chain, want) in [
            (
                "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known",
                "the name h did not resolve (DNS)",
            ),
            (
                "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
                "connection to h refused",
            ),
            (
                "connection error: Connection reset by peer (os error 104)",
                "connection to h reset",
            ),
            (
                "client error (Connect): something else",
                "could not connect to h",
            ),
        ] {
            assert_eq!(connect_failure("h", chain), want, "{chain}");
        }
    }

    #[test]
    fn only_what_may_pass_on_another_try_is_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(transient(&status(code)).is_some(), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 501] {
            assert!(transient(&status(code)).is_none(), "{code}");
        }
        assert!(transient(&RegistryError::ManifestTooLarge { limit: 1 }).is_none());
    }

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(backoff(&p, 1, None), Duration::from_millis(250));
        assert_eq!(backoff(&p, 2, None), Duration::from_millis(500));
        assert_eq!(backoff(&p, 30, None), p.max_wait);
        assert_eq!(
            backoff(&p, 1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(&p, 1, Some(Duration::from_secs(3600))), p.max_wait);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn persistent_failures_stop_after_the_attempts_and_transient_ones_recover() {
        let p = RetryPolicy::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut calls = 0;
        let (r, causes) = with_retries(&p, deadline, || {
            calls += 1;
            async { Err::<(), _>(status(503)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!((calls, causes.len()), (3, 2));

        let mut calls = 0;
        let (r, causes) = with_retries(&p, deadline, || {
            calls += 1;
            let fail = calls == 1;
            async move { if fail { Err(status(502)) } else { Ok(7) } }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(causes, ["r.example answered HTTP 502; waited 250 ms"]);

        let mut calls = 0;
        let (r, causes) = with_retries(&p, deadline, || {
            calls += 1;
            async { Err::<(), _>(status(404)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!((calls, causes.len()), (1, 0), "a 404 is never retried");

        // No retry that would end past the deadline.
        let soon = Instant::now() + Duration::from_millis(100);
        let (_, causes) = with_retries(&p, soon, || async { Err::<(), _>(status(503)) }).await;
        assert!(causes.is_empty());
    }
}
