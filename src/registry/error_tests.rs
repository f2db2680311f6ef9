//! What recorded error answers parse to (ECR, distribution 2.8.2, Docker Hub), and
//! go-containerregistry's `error_test.go` tables transcribed.

use reqwest::header::HeaderValue;

use super::*;

const ECR: &str = "818140567777.dkr.ecr.us-east-1.amazonaws.com";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn at() -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn answer(status: u16, h: &[(&'static str, &str)], body: &str) -> StatusError {
    status_error(
        Request::Manifest,
        ECR.into(),
        status,
        &headers(h),
        body.as_bytes(),
        at(),
    )
}

fn entry(code: ErrorCode, message: &str) -> ErrorEntry {
    ErrorEntry {
        code,
        message: message.into(),
    }
}

#[test]
fn every_code_round_trips_through_its_wire_name() {
    for (code, name, _) in CODES {
        assert_eq!(code.as_str(), name);
        assert_eq!(ErrorCode::from(name), code);
        assert_eq!(code.to_string(), name);
    }
    assert_eq!(
        ErrorCode::from("NOT_FOUND"),
        ErrorCode::Other("NOT_FOUND".into()),
        "Harbor's, in no table"
    );
    assert_eq!(ErrorCode::from("NOT_FOUND").as_str(), "NOT_FOUND");
    assert_eq!(
        ErrorCode::from("manifest_unknown"),
        ErrorCode::Other("manifest_unknown".into()),
        "codes are compared as sent, as before the enum"
    );
}

/// ECR's `/v2/` with a refused Basic password: 401, a Basic challenge and a plain-text body.
#[test]
fn ecr_not_authorized_keeps_its_plain_body_and_challenge() {
    let challenge = r#"Basic realm="https://818140567777.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#;
    let e = status_error(
        Request::Login,
        ECR.into(),
        401,
        &headers(&[("www-authenticate", challenge)]),
        b"Not Authorized\n",
        at(),
    );
    assert_eq!(
        e,
        StatusError {
            request: Request::Login,
            status: 401,
            host: ECR.into(),
            errors: vec![],
            challenge: Some(challenge.into()),
            body: "Not Authorized".into(),
            retry_after: None,
        }
    );
    assert_eq!(e.text(), "Not Authorized");
    assert!(!e.retryable());
    assert_eq!(
        e.to_string(),
        format!("{ECR} answered HTTP 401 to GET /v2/ with credentials")
    );
}

/// ECR's envelopes, as its registry API sends them.
#[test]
fn ecr_envelopes_become_codes_and_messages() {
    let e = answer(
        403,
        &[],
        r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#,
    );
    assert_eq!(
        e.errors,
        [entry(
            ErrorCode::Denied,
            "Your authorization token has expired. Reauthenticate and try again."
        )]
    );
    assert_eq!(e.body, "", "an envelope's body is not kept twice");
    assert!(!e.retryable());

    let m = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no resource-based policy allows the ecr:BatchGetImage action";
    let e = answer(
        403,
        &[],
        &format!(r#"{{"errors":[{{"code":"DENIED","message":"{m}"}}]}}"#),
    );
    assert!(e.has(&ErrorCode::Denied));
    assert_eq!(e.text(), m);

    let e = answer(
        404,
        &[],
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"Requested image not found"}]}"#,
    );
    assert!(e.has(&ErrorCode::ManifestUnknown) && !e.has(&ErrorCode::NameUnknown));
    assert_eq!(e.codes(), ["MANIFEST_UNKNOWN"]);
    assert!(
        !e.retryable(),
        "a missing image is an answer about the image"
    );
}

/// distribution 2.8.2 (Debian's docker-registry, the local stack's), recorded with curl.
#[test]
fn distribution_envelopes_with_their_details() {
    let cases: [(u16, &str, ErrorCode, &str); 6] = [
        (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
            ErrorCode::Unauthorized,
            "authentication required",
        ),
        (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"private/small","Action":"pull"}]}]}"#,
            ErrorCode::Unauthorized,
            "authentication required",
        ),
        (
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#,
            ErrorCode::ManifestUnknown,
            "manifest unknown",
        ),
        (
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"nope"}}]}"#,
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        ),
        (
            404,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}"#,
            ErrorCode::BlobUnknown,
            "blob unknown to registry",
        ),
        (
            400,
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":{}}]}"#,
            ErrorCode::DigestInvalid,
            "provided digest did not match uploaded content",
        ),
    ];
    for (status, body, code, message) in cases {
        let e = answer(status, &[], body);
        assert_eq!(e.errors, [entry(code, message)], "{body}");
        assert_eq!(e.body, "");
        assert!(!e.retryable(), "{body}");
    }
    // The token registry's refusal of a token without pull, challenge and all.
    let challenge = r#"Bearer realm="https://127.0.0.1:57843/token",service="stack-token-registry",scope="repository:private/small:pull",error="insufficient_scope""#;
    let e = answer(
        401,
        &[("www-authenticate", challenge)],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[]}]}"#,
    );
    assert_eq!(e.challenge.as_deref(), Some(challenge));
    // The stack's token issuer refusing a password: JSON, but no envelope.
    let e = answer(401, &[], r#"{"details": "incorrect username or password"}"#);
    assert_eq!(e.errors, []);
    assert_eq!(e.body, r#"{"details": "incorrect username or password"}"#);
}

/// Docker Hub's rate limit (the envelope behind docker's `toomanyrequests: You have
/// reached your pull rate limit...`) and a throttled registry's `Retry-After`, in seconds
/// or as a date.
#[test]
fn throttling_is_retryable_and_keeps_its_retry_after() {
    let hub = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;
    let e = answer(429, &[], hub);
    assert!(e.has(&ErrorCode::TooManyRequests));
    assert!(e.retryable());
    assert_eq!(e.retry_after, None);

    let e = answer(
        429,
        &[("retry-after", "1")],
        r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}"#,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    let date = httpdate::fmt_http_date(at() + Duration::from_secs(7));
    let e = answer(
        503,
        &[("retry-after", &date)],
        r#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}"#,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert!(e.retryable());
    let e = answer(503, &[("retry-after", "soon")], "");
    assert_eq!(e.retry_after, None, "an unreadable Retry-After is none");
}

/// Bodies that are not envelopes: kept as text, trimmed and cut at 300 characters, bytes
/// that are not UTF-8 replaced; an empty one (or one over the cap, which the async edge
/// drops) leaves nothing.
#[test]
fn other_bodies_are_kept_short_as_text() {
    let html = format!(
        "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>\r\n",
        "x".repeat(400)
    );
    let e = answer(502, &[], &html);
    assert_eq!(e.errors, []);
    assert_eq!(e.body.chars().count(), 300);
    assert!(e.body.starts_with("<html><head><title>502 Bad Gateway"));
    assert!(e.retryable());
    let e = status_error(
        Request::Blob,
        "s3.example".into(),
        403,
        &HeaderMap::new(),
        b"\xff\xfeAccess Denied",
        at(),
    );
    assert_eq!(e.body, "\u{fffd}\u{fffd}Access Denied");
    assert_eq!(answer(500, &[], "").body, "");
    assert_eq!(
        answer(500, &[], " \n internal error \n").text(),
        "internal error"
    );
    // A code that is not a string makes the whole envelope unreadable, as serde reads it.
    let e = answer(400, &[], r#"{"errors":[{"code":7,"message":"m"}]}"#);
    assert_eq!(e.errors, []);
    assert_eq!(e.body, r#"{"errors":[{"code":7,"message":"m"}]}"#);
    // An entry without a code or message is kept, empty.
    let e = answer(400, &[], r#"{"errors":[{}]}"#);
    assert_eq!(e.errors, [entry(ErrorCode::Other(String::new()), "")]);
}

/// go-containerregistry's `TestCheckErrorNotError` and `TestCheckErrorWithError`
/// (`pkg/v1/remote/transport/error_test.go` at 3f4ff3c): what each body parses to here
/// (its messages are its own `Error()` format, not ours, so the entries are compared).
#[test]
fn go_containerregistry_check_error_bodies() {
    for (status, body) in [
        (400, ""),
        (401, r#"{"details":"incorrect username or password"}"#),
        (401, "Not JSON"),
        (400, r#"{"StatusCode":400}"#),
    ] {
        let e = answer(status, &[], body);
        assert_eq!((e.status, e.errors.len()), (status, 0), "{body}");
        assert_eq!(e.body, body, "the body is the message");
    }
    let e = answer(
        400,
        &[],
        r#"{"errors":[{"code":"NAME_INVALID","message":"a message for you"}],"StatusCode":400}"#,
    );
    assert_eq!(
        e.errors,
        [entry(ErrorCode::NameInvalid, "a message for you")]
    );
    let e = answer(
        400,
        &[],
        r#"{"errors":[{"code":"NAME_INVALID","message":"a message for you"}, {"code":"SIZE_INVALID","message":"another message for you", "detail": "with some details"}],"StatusCode":400,"Request":null}"#,
    );
    assert_eq!(
        e.errors,
        [
            entry(ErrorCode::NameInvalid, "a message for you"),
            entry(ErrorCode::SizeInvalid, "another message for you"),
        ]
    );
    assert_eq!(e.text(), "a message for you; another message for you");
}

/// go-containerregistry's `TestTemporary` (the same file), row for row: a status of 0 is
/// Go's zero value, an `Error` with no `StatusCode` set.
#[test]
fn go_containerregistry_temporary_table() {
    use ErrorCode::*;
    let rows: [(u16, &[ErrorCode], bool); 6] = [
        (0, &[], false),
        (0, &[BlobUploadInvalid], true),
        (0, &[BlobUploadInvalid, Denied], false),
        (0, &[TooManyRequests], true),
        (0, &[Unavailable], true),
        (500, &[], true),
    ];
    for (status, codes, retry) in rows {
        let e = StatusError {
            request: Request::Manifest,
            status,
            host: ECR.into(),
            errors: codes.iter().map(|c| entry(c.clone(), "")).collect(),
            challenge: None,
            body: String::new(),
            retry_after: None,
        };
        assert_eq!(e.retryable(), retry, "{status} {codes:?}");
    }
}

/// Beyond go-containerregistry's table: an answer about the credentials or the image is
/// final whatever its codes, and a status outside both tables is retried only when every
/// code says "not now".
#[test]
fn final_statuses_win_over_codes() {
    let harbor = answer(
        404,
        &[],
        r#"{"errors":[{"code":"UNKNOWN","message":"artifact x/y:nope not found"}]}"#,
    );
    assert!(harbor.has(&ErrorCode::Unknown));
    assert!(!harbor.retryable());
    let throttled = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;
    assert!(!answer(403, &[], throttled).retryable());
    assert!(answer(400, &[], throttled).retryable());
    assert!(answer(408, &[], "").retryable());
    assert!(!answer(400, &[], "").retryable());
    assert!(
        answer(
            500,
            &[],
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"m"}]}"#
        )
        .retryable(),
        "a temporary status is retried whatever its codes"
    );
}

#[test]
fn retry_after_in_seconds_or_as_a_date() {
    let now = at();
    assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
    assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
    assert_eq!(parse_retry_after("soon", now), None);
}

#[test]
fn a_verify_error_tells_its_source_once_in_the_chain() {
    let e = RegistryError::Verify {
        digest: "sha256:aa".into(),
        host: ECR.into(),
        source: super::super::blob::VerifyError::Truncated {
            expected: 10,
            received: 4,
        },
    };
    let chain = crate::error_chain(&e);
    assert_eq!(
        chain,
        format!("blob sha256:aa from {ECR} did not verify: received 4 bytes, the manifest says 10")
    );
    assert_eq!(chain.matches("received 4 bytes").count(), 1, "{chain}");
}
