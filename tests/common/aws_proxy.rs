//! A small proxy in front of the moto server that answers chosen AWS operations with
//! correctly shaped AWS errors (awsQuery XML for STS, JSON 1.1 for ECR) and relays everything
//! else to moto unchanged, optionally shifting the `Date` header to simulate a skewed clock.
//!
//! moto cannot deny: it accepts any token and any principal. The error bodies here follow the
//! AWS wire formats, with messages recorded from real STS and ECR answers (see the tests).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answer `operation` with an AWS error, or with a canned successful JSON answer.
#[derive(Debug, Clone)]
pub struct Rule {
    pub operation: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub reply: Option<String>,
}

impl Rule {
    pub fn new(operation: &'static str, status: u16, code: &'static str, message: &str) -> Rule {
        Rule {
            operation,
            status,
            code,
            message: message.to_string(),
            reply: None,
        }
    }

    /// A 200 answer with this JSON body (JSON protocols only).
    pub fn reply(operation: &'static str, json: serde_json::Value) -> Rule {
        Rule {
            operation,
            status: 200,
            code: "",
            message: String::new(),
            reply: Some(json.to_string()),
        }
    }
}

pub struct AwsProxy {
    pub addr: SocketAddr,
    /// Operations seen, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// The `WebIdentityToken` of each AssumeRoleWithWebIdentity, in order: which token the
    /// SDK really sent (a JWT is base64url and dots, so it needs no percent-decoding).
    pub web_identity_tokens: Arc<Mutex<Vec<String>>>,
}

impl AwsProxy {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the proxy; `date_shift_secs` moves the `Date` header of relayed answers.
    pub fn start(upstream: &str, rules: Vec<Rule>, date_shift_secs: i64) -> AwsProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let web_identity_tokens = Arc::new(Mutex::new(Vec::new()));
        let tokens2 = web_identity_tokens.clone();
        let rules = Arc::new(rules);
        super::spawn_server(move || async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((s, _)) = listener.accept().await {
                let (rules, seen, tokens) = (rules.clone(), seen2.clone(), tokens2.clone());
                tokio::spawn(async move {
                    handle(s, upstream, &rules, (&seen, &tokens), date_shift_secs).await
                });
            }
        });
        AwsProxy {
            addr,
            seen,
            web_identity_tokens,
        }
    }
}

/// The operation: `X-Amz-Target: Service.Operation` (JSON protocols) or `Action=` (query).
fn operation(head: &str, body: &[u8]) -> String {
    for l in head.lines() {
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("x-amz-target:") {
            let v = v.trim();
            let raw = &l[l.len() - v.len()..];
            return raw.rsplit('.').next().unwrap_or(raw).to_string();
        }
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action=").map(str::to_string))
        .unwrap_or_default()
}

fn error_response(rule: &Rule, json: bool) -> Vec<u8> {
    let request_id = "4f1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let (ctype, body) = if let Some(reply) = &rule.reply {
        ("application/x-amz-json-1.1", reply.clone())
    } else if json {
        (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": rule.code, "message": rule.message}).to_string(),
        )
    } else {
        let kind = if rule.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
                rule.code,
                rule.message.replace('&', "&amp;").replace('<', "&lt;")
            ),
        )
    };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {ctype}\r\nx-amzn-RequestId: {request_id}\r\nDate: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        rule.status,
        if rule.status == 200 { "OK" } else { "Error" },
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        body.len()
    )
    .into_bytes()
}

fn shift_date(response: Vec<u8>, secs: i64) -> Vec<u8> {
    if secs == 0 {
        return response;
    }
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_string();
    let when = std::time::SystemTime::now()
        .checked_add(std::time::Duration::from_secs(secs.unsigned_abs()))
        .filter(|_| secs > 0)
        .unwrap_or_else(|| {
            std::time::SystemTime::now() - std::time::Duration::from_secs(secs.unsigned_abs())
        });
    let mut lines: Vec<String> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .map(str::to_string)
        .collect();
    lines.push(format!("Date: {}", httpdate::fmt_http_date(when)));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&response[end..]);
    out
}

async fn handle(
    mut s: TcpStream,
    upstream: SocketAddr,
    rules: &[Rule],
    (seen, tokens): (&Mutex<Vec<String>>, &Mutex<Vec<String>>),
    shift: i64,
) {
    let Some((head, body)) = super::read_http_request(&mut s).await else {
        return;
    };
    let op = operation(&head, &body);
    seen.lock().unwrap().push(op.clone());
    if op == "AssumeRoleWithWebIdentity"
        && let Some(token) = String::from_utf8_lossy(&body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("WebIdentityToken="))
    {
        tokens.lock().unwrap().push(token.to_string());
    }
    if let Some(rule) = rules.iter().find(|r| r.operation == op) {
        let json = head.to_ascii_lowercase().contains("x-amz-target:");
        let _ = s.write_all(&error_response(rule, json)).await;
        let _ = s.shutdown().await;
        return;
    }
    // Relay to moto, one request per connection.
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    let head: String = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + "Connection: close\r\n\r\n";
    if up.write_all(head.as_bytes()).await.is_err() || up.write_all(&body).await.is_err() {
        return;
    }
    let mut response = Vec::new();
    if up.read_to_end(&mut response).await.is_err() {
        return;
    }
    let _ = s.write_all(&shift_date(response, shift)).await;
    let _ = s.shutdown().await;
}
