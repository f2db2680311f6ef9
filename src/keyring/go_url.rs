//! Go's `net/url.Parse`, as far as the kubelet's `url.Parse("https://" + key)` reaches: the
//! host (port, IP literal, allowed bytes, escapes) and the unescaped path, with the rules of
//! current Go (golang/go `src/net/url/url.go`; `[` only at the start of a host, since the fix for
//! CVE-2026-25679), and `net.SplitHostPort` as `SplitURL` uses it.

use std::net::Ipv6Addr;

/// What Go's `url.Parse` refuses, as the kubelet meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("invalid control character")]
    ControlCharacter,
    #[error("invalid %-escape")]
    Escape,
    #[error("invalid character in host name")]
    HostCharacter,
    #[error("invalid port")]
    Port,
    #[error("invalid IP literal")]
    IpLiteral,
    #[error("invalid userinfo")]
    Userinfo,
    /// Go keeps such bytes in a string; a Rust `String` cannot, so such keys are refused.
    #[error("not UTF-8 once unescaped")]
    NotUtf8,
}

/// The parts of a parsed URL the kubelet uses, unescaped (Go strings may hold any bytes).
#[derive(Debug)]
pub(super) struct Url {
    /// `host[:port]`, or `[ipv6]:port`.
    pub(super) host: Vec<u8>,
    pub(super) path: Vec<u8>,
}

/// `ParseSchemelessURL`.
pub(super) fn parse_schemeless(s: &str) -> Result<Url, UrlError> {
    parse_url(format!("https://{s}").as_bytes())
}

/// `url.Parse` of a string that starts with `http://` or `https://`.
pub(super) fn parse_url(raw: &[u8]) -> Result<Url, UrlError> {
    let (before_fragment, fragment) = split_at_byte(raw, b'#');
    if let Some(fragment) = fragment {
        unescape(fragment, Mode::Other)?;
    }
    if before_fragment.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(UrlError::ControlCharacter);
    }
    let scheme_end = before_fragment.iter().position(|&b| b == b':').unwrap_or(0);
    let mut rest = &before_fragment[scheme_end + 1..];
    if rest.ends_with(b"?") && rest.iter().filter(|&&b| b == b'?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else {
        rest = split_at_byte(rest, b'?').0;
    }
    let after_slashes = rest.strip_prefix(b"//").unwrap_or(rest);
    let slash = after_slashes.iter().position(|&b| b == b'/');
    let (authority, path) = after_slashes.split_at(slash.unwrap_or(after_slashes.len()));
    Ok(Url {
        host: parse_authority(authority)?,
        path: unescape(path, Mode::Other)?,
    })
}

fn split_at_byte(s: &[u8], b: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&c| c == b) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

fn parse_authority(authority: &[u8]) -> Result<Vec<u8>, UrlError> {
    let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
        return parse_host(authority);
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    let valid = userinfo
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b));
    if !valid {
        return Err(UrlError::Userinfo);
    }
    // Only the escapes are checked: `user` and `user:password` alike.
    unescape(userinfo, Mode::Other)?;
    Ok(host)
}

/// `parseHost` of current Go, for `http`/`https` (the port starts at the first colon).
fn parse_host(host: &[u8]) -> Result<Vec<u8>, UrlError> {
    match host.iter().rposition(|&b| b == b'[') {
        Some(0) => return parse_ip_literal(host),
        Some(_) => return Err(UrlError::IpLiteral),
        None => {}
    }
    if let Some(colon) = host.iter().position(|&b| b == b':')
        && !valid_optional_port(&host[colon..])
    {
        return Err(UrlError::Port);
    }
    unescape(host, Mode::Host)
}

/// `[ipv6[%25zone]][:port]`: the brackets must hold an IPv6 address.
fn parse_ip_literal(host: &[u8]) -> Result<Vec<u8>, UrlError> {
    let close = host
        .iter()
        .rposition(|&b| b == b']')
        .ok_or(UrlError::IpLiteral)?;
    let colon_port = &host[close + 1..];
    if !valid_optional_port(colon_port) {
        return Err(UrlError::Port);
    }
    let inner = &host[1..close];
    let mut address = match find(inner, b"%25") {
        Some(zone) => {
            let mut address = unescape(&inner[..zone], Mode::Host)?;
            address.extend(unescape(&inner[zone..], Mode::Zone)?);
            address
        }
        None => unescape(inner, Mode::Host)?,
    };
    let text = std::str::from_utf8(&address).map_err(|_| UrlError::IpLiteral)?;
    let ip = match text.split_once('%') {
        Some((_, "")) => return Err(UrlError::IpLiteral),
        Some((ip, _zone)) => ip,
        None => text,
    };
    if ip.parse::<Ipv6Addr>().is_err() {
        return Err(UrlError::IpLiteral);
    }
    address.insert(0, b'[');
    address.push(b']');
    address.extend(colon_port);
    Ok(address)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `/^(:\d*)?$/`
fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Host,
    Zone,
    /// Path, fragment, userinfo: only the escapes are checked.
    Other,
}

/// Bytes Go lets stand unescaped in a host (`!shouldEscape(c, encodeHost)`).
fn host_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&b)
}

/// Go's `unescape`.
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'%' {
            if mode != Mode::Other && s[i] < 0x80 && !host_byte_ok(s[i]) {
                return Err(UrlError::HostCharacter);
            }
            out.push(s[i]);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            s.get(i + 1).and_then(|&b| hex_value(b)),
            s.get(i + 2).and_then(|&b| hex_value(b)),
        ) else {
            return Err(UrlError::Escape);
        };
        let value = hi << 4 | lo;
        let percent_25 = &s[i..i + 3] == b"%25";
        // A host may escape only non-ASCII bytes; a zone only what a host could hold.
        let refused = match mode {
            Mode::Host => hi < 8 && !percent_25,
            Mode::Zone => !percent_25 && value != b' ' && !host_byte_ok(value),
            Mode::Other => false,
        };
        if refused {
            return Err(UrlError::Escape);
        }
        out.push(value);
        i += 3;
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `net.SplitHostPort`, or `None` where it errs.
fn split_host_port(hostport: &[u8]) -> Option<(&[u8], &[u8])> {
    let last_colon = hostport.iter().rposition(|&b| b == b':')?;
    let (host, no_open_from, no_close_from) = if hostport[0] == b'[' {
        let close = hostport.iter().position(|&b| b == b']')?;
        if close + 1 != last_colon {
            return None;
        }
        (&hostport[1..close], 1, close + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(&b':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[no_open_from..].contains(&b'[') || hostport[no_close_from..].contains(&b']') {
        return None;
    }
    Some((host, &hostport[last_colon + 1..]))
}

/// `SplitURL`: host labels and port; a host `SplitHostPort` refuses is all labels.
pub(super) fn split_url(host: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let (name, port) = split_host_port(host).unwrap_or((host, b""));
    (name.split(|&b| b == b'.').collect(), port)
}
