//! Just enough X.509 to name a certificate: the subject and issuer of a DER certificate, as
//! `CN=…, O=…`. When a registry's certificate is not trusted, the question is always "whose
//! certificate is it then?" (a proxy's, a self-signed one, an internal CA's), and the answer
//! is in those two names. Hostile input: every length is checked, nothing recurses, and a
//! certificate that does not parse names nothing rather than failing anything.

/// A certificate's names, as `REGISTRY_TLS_UNTRUSTED` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub subject: String,
    pub issuer: String,
}

/// The longest rendered name kept; a real distinguished name is far shorter.
const MAX_NAME: usize = 512;

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// Subject and issuer of a DER certificate (RFC 5280 §4.1), or `None` if it is not one.
pub fn names(der: &[u8]) -> Option<Names> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // version [0] EXPLICIT (absent in v1 certificates)
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    let (_serial, _, r) = element(rest)?;
    let (_signature, _, r) = element(r)?;
    let (SEQUENCE, issuer, r) = element(r)? else {
        return None;
    };
    let (_validity, _, r) = element(r)?;
    let (SEQUENCE, subject, _) = element(r)? else {
        return None;
    };
    Some(Names {
        subject: name(subject)?,
        issuer: name(issuer)?,
    })
}

/// A Name's RDNs in the order written, `CN=a, O=b`.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (SET, mut set, r) = element(rdns)? else {
            return None;
        };
        rdns = r;
        while !set.is_empty() {
            let (SEQUENCE, atv, r) = element(set)? else {
                return None;
            };
            set = r;
            let (OID, oid, r) = element(atv)? else {
                return None;
            };
            let (tag, value, _) = element(r)?;
            parts.push(format!("{}={}", attribute(oid), string(tag, value)));
        }
    }
    let mut out = parts.join(", ");
    if out.len() > MAX_NAME {
        let cut = (0..=MAX_NAME).rev().find(|&i| out.is_char_boundary(i))?;
        out.truncate(cut);
        out.push('…');
    }
    Some(out)
}

/// The short name of a common attribute type, else its dotted OID.
fn attribute(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.saturating_mul(128).saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return "?".into();
    };
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    std::iter::once(a)
        .chain(std::iter::once(b))
        .chain(rest.iter().copied())
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A directory string's text; BMPString is UTF-16BE, the others are read as UTF-8 (ASCII for
/// Printable and IA5). Bytes that are not text are shown as `\xNN`.
fn string(tag: u8, value: &[u8]) -> String {
    if tag == 0x1e {
        let units: Vec<u16> = value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    match std::str::from_utf8(value) {
        Ok(s) => s.chars().flat_map(char::escape_default).collect(),
        Err(_) => value.iter().map(|b| format!("\\x{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 certificate made with OpenSSL 3 (`openssl req -new -subj "/C=US/O=Corp
    /// Proxy/OU=Egress/CN=proxy.corp.example"`, signed with `openssl x509 -req -CA` by a CA
    /// made with `-subj "/O=Corp/CN=Corp Inspection CA"`), base64 of its DER.
    const CERT: &str = include_str!("../../tests/fixtures/tls/proxy-cert.der.b64");

    fn der() -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(CERT.split_whitespace().collect::<String>())
            .unwrap()
    }

    #[test]
    fn names_a_real_certificate() {
        assert_eq!(
            names(&der()),
            Some(Names {
                subject: "C=US, O=Corp Proxy, OU=Egress, CN=proxy.corp.example".into(),
                issuer: "O=Corp, CN=Corp Inspection CA".into(),
            })
        );
    }

    #[test]
    fn anything_short_of_a_certificate_names_nothing() {
        let der = der();
        for cut in 0..der.len().min(400) {
            let _ = names(&der[..cut]);
        }
        assert_eq!(names(b""), None);
        assert_eq!(names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(names(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }

    #[test]
    fn attribute_types_and_strings() {
        assert_eq!(attribute(&[0x55, 0x04, 0x03]), "CN");
        assert_eq!(
            attribute(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37]),
            "1.3.6.1.4.1.311"
        );
        assert_eq!(string(0x1e, &[0, b'h', 0, b'i']), "hi");
        assert_eq!(string(0x0c, b"a\nb"), "a\\nb");
        assert_eq!(string(0x13, &[0xff]), "\\xff");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = names(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_certificate(at in 0usize..600, byte in proptest::num::u8::ANY) {
            let mut der = der();
            let at = at % der.len();
            der[at] = byte;
            if let Some(n) = names(&der) {
                proptest::prop_assert!(n.subject.len() <= MAX_NAME + 3 && n.issuer.len() <= MAX_NAME + 3);
            }
        }
    }
}
