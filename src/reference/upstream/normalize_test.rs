//! `normalize_test.go`: `ParseNormalizedNamed` and `ParseDockerRef`, which is what
//! `ImageRef::from_str`, `name()` and `normalized()` are.

use super::super::{ImageRef, grammar};

fn parse(s: &str) -> ImageRef {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

/// normalize_test.go `TestValidateReferenceName`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 27 valid, 14 invalid, all kept.
pub(super) fn validate_reference_name() -> (Vec<&'static str>, Vec<&'static str>) {
    let valid = vec![
        "docker/docker",
        "library/debian",
        "debian",
        "localhost/library/debian",
        "localhost/debian",
        "LOCALDOMAIN/library/debian",
        "LOCALDOMAIN/debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        // Valid with a hostname: that removes the ambiguity with an identifier.
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
    ];
    let invalid = vec![
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    ];
    (valid, invalid)
}

/// normalize_test.go `TestValidateRemoteName`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 8 valid, 13 invalid, all kept.
pub(super) fn validate_remote_name() -> (Vec<&'static str>, Vec<&'static str>) {
    let valid = vec![
        "docker/docker",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ];
    let invalid = vec![
        "docker/Docker",
        "docker///docker",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "-docker/docker",
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
    ];
    (valid, invalid)
}

#[test]
fn test_validate_reference_name_and_remote_name() {
    let (v1, i1) = validate_reference_name();
    let (v2, i2) = validate_remote_name();
    assert_eq!((v1.len(), i1.len(), v2.len(), i2.len()), (27, 14, 8, 13));
    for s in v1.into_iter().chain(v2) {
        parse(s);
    }
    for s in i1.into_iter().chain(i2) {
        let e = s.parse::<ImageRef>().expect_err(s);
        assert_eq!(e.input, s);
    }
}

/// `(remote name, familiar name, full name, ambiguous name, domain)`.
type RepoInfo = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// normalize_test.go `TestParseRepositoryInfo`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 20 rows, all kept; each is parsed from its familiar, full and (if any) ambiguous form.
pub(super) fn parse_repository_info() -> Vec<RepoInfo> {
    vec![
        (
            "fooo",
            "localhost/fooo",
            "localhost/fooo",
            "localhost/fooo",
            "localhost",
        ),
        (
            "fooo/bar",
            "localhost/fooo/bar",
            "localhost/fooo/bar",
            "localhost/fooo/bar",
            "localhost",
        ),
        (
            "fooo",
            "LOCALDOMAIN/fooo",
            "LOCALDOMAIN/fooo",
            "LOCALDOMAIN/fooo",
            "LOCALDOMAIN",
        ),
        (
            "fooo/bar",
            "LOCALDOMAIN/fooo/bar",
            "LOCALDOMAIN/fooo/bar",
            "LOCALDOMAIN/fooo/bar",
            "LOCALDOMAIN",
        ),
        (
            "fooo/bar",
            "fooo/bar",
            "docker.io/fooo/bar",
            "index.docker.io/fooo/bar",
            "docker.io",
        ),
        (
            "library/ubuntu",
            "ubuntu",
            "docker.io/library/ubuntu",
            "library/ubuntu",
            "docker.io",
        ),
        (
            "nonlibrary/ubuntu",
            "nonlibrary/ubuntu",
            "docker.io/nonlibrary/ubuntu",
            "",
            "docker.io",
        ),
        (
            "other/library",
            "other/library",
            "docker.io/other/library",
            "",
            "docker.io",
        ),
        (
            "private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "privatebase",
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000/privatebase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "private/moonbase",
            "example.com/private/moonbase",
            "example.com/private/moonbase",
            "",
            "example.com",
        ),
        (
            "privatebase",
            "example.com/privatebase",
            "example.com/privatebase",
            "",
            "example.com",
        ),
        (
            "private/moonbase",
            "example.com:8000/private/moonbase",
            "example.com:8000/private/moonbase",
            "",
            "example.com:8000",
        ),
        (
            "privatebasee",
            "example.com:8000/privatebasee",
            "example.com:8000/privatebasee",
            "",
            "example.com:8000",
        ),
        (
            "library/ubuntu-12.04-base",
            "ubuntu-12.04-base",
            "docker.io/library/ubuntu-12.04-base",
            "index.docker.io/library/ubuntu-12.04-base",
            "docker.io",
        ),
        (
            "library/foo",
            "foo",
            "docker.io/library/foo",
            "docker.io/foo",
            "docker.io",
        ),
        (
            "library/foo/bar",
            "library/foo/bar",
            "docker.io/library/foo/bar",
            "",
            "docker.io",
        ),
        (
            "store/foo/bar",
            "store/foo/bar",
            "docker.io/store/foo/bar",
            "",
            "docker.io",
        ),
        ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
        ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
    ]
}

#[test]
fn test_parse_repository_info() {
    let rows = parse_repository_info();
    assert_eq!(rows.len(), 20);
    for (remote, familiar, full, ambiguous, domain) in rows {
        for s in [familiar, full, ambiguous] {
            if s.is_empty() {
                continue;
            }
            let r = parse(s);
            assert_eq!(r.familiar_name(), familiar, "FamiliarName of {s:?}");
            // Every input is name-only, so upstream's String() is Name().
            assert_eq!(r.name(), full, "String() of {s:?}");
            assert_eq!(r.registry, domain, "Domain of {s:?}");
            assert_eq!(r.repository, remote, "Path of {s:?}");
        }
    }
}

/// normalize_test.go `TestParseReferenceWithTagAndDigest`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// The one case. Upstream checks `ParseNormalizedNamed`'s String() and FamiliarString, which
/// keep the tag beside the digest: that is the fields here (`normalized()` drops the tag, as
/// `ParseDockerRef` does).
#[test]
fn test_parse_reference_with_tag_and_digest() {
    let short =
        "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let r = parse(short);
    let (tag, digest) = (
        r.tag.as_deref().unwrap_or_default(),
        r.digest.as_deref().unwrap_or_default(),
    );
    assert_eq!(
        format!("{}:{tag}@{digest}", r.name()),
        format!("docker.io/library/{short}")
    );
    assert!(r.tag.is_some(), "should support tag");
    assert!(r.digest.is_some(), "should support digest");
    assert_eq!(format!("{}:{tag}@{digest}", r.familiar_name()), short);
    assert_eq!(
        r.manifest_reference(),
        digest,
        "the runtime pulls by digest"
    );
}

/// `(input, domain, path)`.
type SplitRow = (&'static str, &'static str, &'static str);

/// normalize_test.go `TestNormalizedSplitHostname`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 11 rows, all kept.
pub(super) fn normalized_split_hostname() -> Vec<SplitRow> {
    vec![
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ]
}

#[test]
fn test_normalized_split_hostname() {
    let rows = normalized_split_hostname();
    assert_eq!(rows.len(), 11);
    for (input, domain, path) in rows {
        let r = parse(input);
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            (domain, path),
            "{input:?}"
        );
    }
}

/// normalize_test.go `TestParseDockerRef`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 11 rows, all kept.
pub(super) fn parse_docker_ref() -> Vec<(&'static str, &'static str)> {
    vec![
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:latest", "docker.io/library/busybox:latest"),
        (
            "busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            "docker.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
        ),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
        ),
        (
            "docker.io/busybox:latest",
            "docker.io/library/busybox:latest",
        ),
        ("library/busybox:latest", "docker.io/library/busybox:latest"),
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest",
        ),
        ("gcr.io/library/busybox", "gcr.io/library/busybox:latest"),
        (
            "gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            "gcr.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
        ),
    ]
}

#[test]
fn test_parse_docker_ref() {
    let rows = parse_docker_ref();
    assert_eq!(rows.len(), 11);
    for (input, expected) in rows {
        let out = parse(input).normalized();
        assert_eq!(out, expected, "{input:?}");
        assert!(
            grammar::parse(&out).is_ok(),
            "{out:?} should be a valid reference"
        );
    }
}
