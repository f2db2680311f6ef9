//! Property tests of the reference parser (docs/property-tests.md): it never panics and stays
//! linear on any string, what it accepts re-renders to a reference naming the same image, and
//! it agrees with the distribution grammar on names generated from the grammar's components
//! and on those names broken in ways the grammar refuses.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::ImageRef;
use super::grammar::{PATH_MAX, is_identifier};

/// `pathComponent`: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn path_component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(([._]|__|-{1,3})[a-z0-9]{1,6}){0,3}"
}

/// `remoteName`: one to four components.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_component(), 1..=4).prop_map(|c| c.join("/"))
}

/// `domainAndPort`: host names (any case), IPv4-looking names, bracketed IPv6, an optional port,
/// and the names the normalisation treats specially.
fn domain() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
    let name = prop::collection::vec(label, 1..=4).prop_map(|l| l.join("."));
    let ipv6 = prop_oneof![
        Just("[::1]".to_string()),
        Just("[fe80::1]".to_string()),
        Just("[2001:DB8:0:0:0:0:0:1]".to_string()),
    ];
    let host = prop_oneof![
        6 => name,
        1 => ipv6,
        1 => "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        1 => prop::sample::select(vec![
            "localhost",
            "docker.io",
            "index.docker.io",
            "818140567777.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr-ecr.eu-west-1.on.aws",
        ])
        .prop_map(str::to_string),
    ];
    (host, prop::option::of("[0-9]{1,5}")).prop_map(|(h, port)| match port {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

/// `tag`: `[\w][\w.-]{0,127}`.
fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
}

/// A digest go-digest validates: sha256, sha384 or sha512 with its length of lower-case hex.
fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{96}".prop_map(|h| format!("sha384:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

/// A reference made of the grammar's parts, kept apart so the expected parse can be worked out.
#[derive(Debug, Clone)]
struct Generated {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Generated {
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.domain {
            s.push_str(d);
            s.push('/');
        }
        s.push_str(&self.path);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `splitDockerDomain` as distribution documents it: the first component is a registry
    /// when it is `localhost` or has a '.', a ':' or upper case; `index.docker.io` is
    /// `docker.io`; a Docker Hub name of one component is an official image under `library/`.
    fn expected_name(&self) -> (String, String) {
        let name = match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first == "localhost"
                    || first.contains(['.', ':'])
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                let first = if first == "index.docker.io" {
                    "docker.io"
                } else {
                    first
                };
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        (registry, repository)
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        prop::option::of(domain()),
        path(),
        prop::option::of(tag()),
        prop::option::of(digest()),
    )
        .prop_map(|(domain, path, tag, digest)| Generated {
            domain,
            path,
            tag,
            digest,
        })
}

/// Characters no part of a reference may hold (the digest algorithm's '+' aside, so not it).
const NEVER_VALID: &[char] = &[
    ' ', '\t', '\n', '\0', '!', '"', '#', '$', '%', '&', '\'', '(', ')', '*', ',', ';', '<', '=',
    '>', '?', '\\', '^', '`', '{', '|', '}', '~', 'é', 'ß', '\u{2028}',
];

/// The same components the parser reports, compared across re-renderings.
fn components(r: &ImageRef) -> (&str, &str, Option<&str>, Option<&str>) {
    (
        &r.registry,
        &r.repository,
        r.digest.is_none().then_some(r.manifest_reference()),
        r.digest.as_deref(),
    )
}

proptest! {
    /// Any string at all: an answer, never a panic.
    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = s.parse::<ImageRef>();
    }

    /// Strings over the reference alphabet reach much deeper into the parser than random
    /// Unicode does.
    #[test]
    fn never_panics_on_reference_alphabet(s in "[a-zA-Z0-9._:/@\\[\\]%+-]{0,120}") {
        if let Ok(r) = s.parse::<ImageRef>() {
            // Whatever is accepted is a reference in its own right.
            prop_assert!(r.normalized().parse::<ImageRef>().is_ok(), "{s:?}");
        }
    }

    /// Names built from the grammar's components are accepted, split as distribution splits
    /// them, with the tag and digest kept as written.
    #[test]
    fn accepts_generated_valid_references(g in generated()) {
        let input = g.render();
        let (registry, repository) = g.expected_name();
        let r = match input.parse::<ImageRef>() {
            Ok(r) => r,
            // The parser's two refusals of grammatical names: an image ID, a path too long.
            Err(_) if is_identifier(&input) || repository.len() > PATH_MAX => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{input:?} refused: {e}"))),
        };
        prop_assert_eq!(&r.original, &input);
        prop_assert_eq!(&r.registry, &registry, "{:?}", input);
        prop_assert_eq!(&r.repository, &repository, "{:?}", input);
        prop_assert_eq!(&r.digest, &g.digest);
        match (&g.tag, &g.digest) {
            (None, None) => prop_assert_eq!(r.tag.as_deref(), Some("latest")),
            (t, _) => prop_assert_eq!(&r.tag, t),
        }
        prop_assert_eq!(
            r.resolved_registry.as_str(),
            if registry == "docker.io" { "registry-1.docker.io" } else { registry.as_str() }
        );
    }

    /// `normalized()` names the same image and is a fixed point; `familiar_string()` names the
    /// same image unless upstream's own `FamiliarName` ambiguity applies (a Docker Hub
    /// repository whose first component reads as a registry: `docker.io/localhost/app` is
    /// printed `localhost/app`, as `docker` prints it).
    #[test]
    fn accepted_references_re_render_to_the_same_image(g in generated()) {
        let Ok(r) = g.render().parse::<ImageRef>() else { return Ok(()) };
        let n = r.normalized();
        let again: ImageRef = n.parse().map_err(|e| TestCaseError::fail(format!("{n:?}: {e}")))?;
        prop_assert_eq!(components(&again), components(&r));
        prop_assert_eq!(&again.ecr, &r.ecr);
        prop_assert_eq!(again.normalized(), n.clone(), "normalized() is a fixed point");
        prop_assert_eq!(again.name(), r.name());

        let f = r.familiar_string();
        let first = r.repository.split('/').next().unwrap_or_default();
        let upstream_ambiguity = r.registry == "docker.io"
            && r.repository.contains('/')
            && !r.repository.starts_with("library/")
            && (first == "localhost" || first.contains(['.', ':']));
        if !upstream_ambiguity {
            let again: ImageRef =
                f.parse().map_err(|e| TestCaseError::fail(format!("{f:?}: {e}")))?;
            prop_assert_eq!(components(&again), components(&r), "{:?} -> {:?}", r.original, f);
            prop_assert_eq!(again.familiar_string(), f);
        }
    }

    /// A character no part of the grammar allows, anywhere, is refused.
    #[test]
    fn refuses_a_never_valid_character_anywhere(
        g in generated(),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select(NEVER_VALID),
    ) {
        let mut s = g.render();
        let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        s.insert(*at.get(&boundaries), c);
        prop_assert!(s.parse::<ImageRef>().is_err(), "{s:?} accepted");
    }

    /// The grammar's structural rules, each broken on an otherwise valid reference.
    #[test]
    fn refuses_grammar_violations(
        domain in domain(),
        p in path(),
        which in 0..9usize,
        at in any::<prop::sample::Index>(),
    ) {
        let bad = match which {
            // Upper case in the repository path (after a registry, so not taken for one).
            0 => {
                let i = at.index(p.len());
                let mut q = p.clone();
                q.insert(i, 'A');
                format!("{domain}/{q}")
            }
            // An empty component.
            1 if p.contains('/') => format!("{domain}/{}", p.replacen('/', "//", 1)),
            1 => format!("{domain}/{p}/"),
            2 => format!("{domain}/{p}:"),
            3 => format!("{domain}/{p}:{}", "t".repeat(129)),
            4 => format!("{domain}/{p}:{}v1", if at.index(2) == 0 { '.' } else { '-' }),
            5 => format!("{domain}/{p}@sha256:{}", "a".repeat(63 + 2 * at.index(2))),
            6 => format!("{domain}/{p}@sha256:{}", "A".repeat(64)),
            7 => format!("{domain}/{}{p}", "a/".repeat(PATH_MAX / 2 + 1)),
            _ => format!("{domain}/{p}@md5:{}", "a".repeat(32)),
        };
        prop_assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} accepted");
    }
}

/// Linear time on hostile input: long runs of separators, brackets, colons and '@' in every
/// position take the parser no measurable time.
#[test]
fn proptest_bounded_time_on_long_hostile_inputs() {
    let n = 64 * 1024;
    let inputs = [
        "a".repeat(n),
        "a-".repeat(n / 2),
        "a_".repeat(n / 2) + "/b",
        "a/".repeat(n / 2) + "b",
        ":".repeat(n),
        "@".repeat(n),
        "[".repeat(n),
        format!("{}/a", "a.".repeat(n / 2)),
        format!("a/b@sha256:{}", "f".repeat(n)),
        format!("a/b:{}", "t".repeat(n)),
        "A".repeat(n),
        "é".repeat(n / 2),
    ];
    for input in &inputs {
        let start = Instant::now();
        let _ = input.parse::<ImageRef>();
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "{}… took {took:?}",
            &input[..16]
        );
    }
}
