//! The reference grammar of `github.com/distribution/reference` (`regexp.go`, `reference.Parse`)
//! and the digest rules of `github.com/opencontainers/go-digest` v1.0.0, by hand.
//!
//! This layer does not normalise: `busybox` has no domain here, as in upstream `Parse`. The
//! Docker Hub rules (`docker.io`, `library/`) live one level up, in `ParseNormalizedNamed`'s
//! place. Each check is written so that it accepts exactly what upstream's anchored regular
//! expression accepts, and where the regular expression could split a string two ways, it
//! picks the split Go's leftmost-first matching picks (a first component that can be a domain
//! is one).

/// Upstream's `RepositoryNameTotalLengthMax`; it bounds the path only, not the domain.
pub(super) const PATH_MAX: usize = 255;

/// A reference as upstream `Parse` splits it, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Parts<'a> {
    /// Empty when the name has no domain (`busybox`, or `foo_bar.com/app`, whose first
    /// component is not a valid host but is a valid path component).
    pub domain: &'a str,
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Which upstream error a refusal corresponds to; the tests compare it with upstream's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `ErrNameEmpty`
    NameEmpty,
    /// `ErrReferenceInvalidFormat`
    InvalidFormat,
    /// `ErrNameContainsUppercase`
    NameContainsUppercase,
    /// `ErrNameTooLong`
    NameTooLong,
    /// `digest.ErrDigestInvalidFormat`
    DigestInvalidFormat,
    /// `digest.ErrDigestInvalidLength`
    DigestInvalidLength,
    /// `digest.ErrDigestUnsupported`
    DigestUnsupported,
    /// `ParseNormalizedNamed`: "cannot specify 64-byte hexadecimal strings"
    ImageId,
    /// `ParseNormalizedNamed`: "repository name (%s) must be lowercase"
    RepositoryUppercase,
}

/// A refusal: the upstream error it matches, and what to tell a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    pub kind: Kind,
    pub reason: String,
}

impl Invalid {
    pub(super) fn new(kind: Kind, reason: impl Into<String>) -> Invalid {
        Invalid {
            kind,
            reason: reason.into(),
        }
    }
}

const PATH_RULE: &str =
    "lower-case letters and digits, joined by one '.', one or two '_', or any number of '-'";
const HOST_RULE: &str = concat!(
    "a host name of letters, digits and inner '-' in '.'-separated labels, an IPv4 address ",
    "or a bracketed IPv6 address, then optionally ':' and a port of digits"
);

/// `reference.Parse`: the anchored grammar, then the path length, then `digest.Parse`.
pub(super) fn parse(s: &str) -> Result<Parts<'_>, Invalid> {
    if s.is_empty() {
        return Err(Invalid::new(Kind::NameEmpty, "the reference is empty"));
    }
    let parts = match match_reference(s) {
        Ok(p) => p,
        Err(reason) => {
            // Upstream retries the lower-cased input to say "must be lowercase" when that is
            // the only fault; Go's ToLower is Unicode-aware, so is this.
            let lower = s.to_lowercase();
            let kind = if lower != s && match_reference(&lower).is_ok() {
                Kind::NameContainsUppercase
            } else {
                Kind::InvalidFormat
            };
            return Err(Invalid { kind, reason });
        }
    };
    if parts.path.len() > PATH_MAX {
        return Err(Invalid::new(
            Kind::NameTooLong,
            format!(
                "the repository path is {} characters long; at most {PATH_MAX} are allowed",
                parts.path.len()
            ),
        ));
    }
    if let Some(d) = parts.digest {
        validate_digest(d)?;
    }
    Ok(parts)
}

/// `referenceRegexp` (`^name(:tag)?(@digest)?$`) and the `anchoredNameRegexp` split of the
/// name. No length or digest-algorithm checks: those come after, as upstream.
pub(super) fn match_reference(s: &str) -> Result<Parts<'_>, String> {
    // Neither name nor tag may hold '@', nor the digest: the first '@' is the only split.
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    // A ':' in the name sits in the domain, which a '/' always follows; so a last ':' with no
    // '/' after it can only start the tag.
    let (name, tag) = match name_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name_tag, None),
    };
    let (domain, path) = split_name(name)?;
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return Err(if t.is_empty() {
            "the tag after ':' is empty".to_string()
        } else {
            format!(
                "tag {t:?} must be 1 to 128 characters of A-Z a-z 0-9 _ . - and not start with '.' or '-'"
            )
        });
    }
    if let Some(d) = digest
        && !valid_digest_syntax(d)
    {
        return Err(format!(
            "digest {d:?} must be <algorithm>:<hex>, e.g. sha256: followed by 64 lower-case hex digits"
        ));
    }
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `anchoredNameRegexp`: `^(?:(domainAndPort)/)?(remoteName)$`, domain preferred.
pub(super) fn split_name(name: &str) -> Result<(&str, &str), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    let Some((first, rest)) = name.split_once('/') else {
        return if valid_path_component(name) {
            Ok(("", name))
        } else if name.contains('[') {
            Err(format!(
                "{name:?} is not a repository name ({PATH_RULE}); a registry host must be followed by /repository"
            ))
        } else {
            Err(format!("repository name {name:?} must be {PATH_RULE}"))
        };
    };
    let domain = valid_domain(first);
    if !domain && !valid_path_component(first) {
        // Name the rule the writer was aiming at: a port, brackets or upper case can only be
        // a registry; a '.' may be either.
        let host_only = first.contains([':', '[']) || first.bytes().any(|b| b.is_ascii_uppercase());
        return Err(if host_only {
            format!("registry {first:?} must be {HOST_RULE}")
        } else if first.contains('.') {
            format!(
                "first component {first:?} is neither a registry ({HOST_RULE}) nor a repository component ({PATH_RULE})"
            )
        } else {
            format!("repository component {first:?} must be {PATH_RULE}")
        });
    }
    check_path(rest)?;
    Ok(if domain { (first, rest) } else { ("", name) })
}

/// `remoteName`: path components joined by single slashes.
fn check_path(path: &str) -> Result<(), String> {
    for c in path.split('/') {
        if c.is_empty() {
            return Err(format!(
                "the repository path {path:?} has an empty component ('//' or a '/' at an end)"
            ));
        }
        if !valid_path_component(c) {
            return Err(format!("repository component {c:?} must be {PATH_RULE}"));
        }
    }
    Ok(())
}

/// `pathComponent`: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`. Each separator must be followed
/// by an alphanumeric, so taking the longest separator never loses a match.
pub(super) fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        let Some(&sep) = b.get(i) else {
            return true;
        };
        i += 1;
        match sep {
            b'.' => {}
            b'_' => i += usize::from(b.get(i) == Some(&b'_')),
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `domainAndPort`: `(domainName | \[[a-fA-F0-9:]+\])(:[0-9]+)?`. No label or port length
/// limits: upstream leaves those to whoever dials the host.
pub(super) fn valid_domain(d: &str) -> bool {
    let (host_ok, port) = match d.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inner, after)) => (
                !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                after,
            ),
            None => return false,
        },
        None => match d.find(':') {
            Some(i) => (valid_domain_name(&d[..i]), &d[i..]),
            None => (valid_domain_name(d), ""),
        },
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `domainName`: labels of `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, dot-separated.
fn valid_domain_name(h: &str) -> bool {
    h.split('.').all(|l| {
        let b = l.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    })
}

/// `tag`: `[\w][\w.-]{0,127}`, with Go's ASCII-only `\w`.
pub(super) fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    b.first().is_some_and(|&x| word(x))
        && b.len() <= 128
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `digestPat`: `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
fn valid_digest_syntax(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algo.split(['-', '_', '+', '.']).all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// go-digest v1.0.0 `Digest.Validate`, on a digest that already matched `digestPat`.
///
/// sha384 and sha512 count as registered: go-digest asks `crypto.Hash.Available()`, which is
/// true in the kubelet and containerd (they link `crypto/sha512` through `crypto/tls`), though
/// not in upstream's own test binary.
fn validate_digest(d: &str) -> Result<(), Invalid> {
    let (algo, hex) = d.split_once(':').unwrap_or((d, ""));
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        // go-digest's own `DigestRegexp` wants a lower-case algorithm before it will call an
        // unknown one merely unsupported.
        _ if algo.bytes().any(|b| b.is_ascii_uppercase()) => {
            return Err(Invalid::new(
                Kind::DigestInvalidFormat,
                format!("digest algorithm {algo:?} must be lower case, e.g. sha256"),
            ));
        }
        _ => {
            return Err(Invalid::new(
                Kind::DigestUnsupported,
                format!("digest algorithm {algo:?} is not supported; use sha256, sha384 or sha512"),
            ));
        }
    };
    if hex.len() != want {
        return Err(Invalid::new(
            Kind::DigestInvalidLength,
            format!(
                "{algo} digest has {} hex digits; it must have exactly {want}",
                hex.len()
            ),
        ));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Invalid::new(
            Kind::DigestInvalidFormat,
            format!("{algo} digest must be lower-case hex (0-9, a-f)"),
        ));
    }
    Ok(())
}

/// `anchoredIdentifierRegexp`: `^[a-f0-9]{64}$`, an image ID.
pub(super) fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
