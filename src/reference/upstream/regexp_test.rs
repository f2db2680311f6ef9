//! `regexp_test.go`: the grammar's pieces on their own (domain, name, reference, identifier),
//! against the hand-written checks that stand in for upstream's regular expressions.

use super::super::grammar;

/// reference_test.go's `checkRegexp` outcomes for the anchored name expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    No,
    /// Matches; upstream gives no submatches to compare.
    Yes,
    /// Matches with `(domain, remote name)`.
    Split(&'static str, &'static str),
}
use Name::{No, Split, Yes};

/// regexp_test.go `TestDomainRegexp`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 30 rows, all kept.
#[test]
fn test_domain_regexp() {
    let rows = [
        ("test.com", true),
        ("test.com:10304", true),
        ("test.com:http", false),
        ("localhost", true),
        ("localhost:8080", true),
        ("a", true),
        ("a.b", true),
        ("ab.cd.com", true),
        ("a-b.com", true),
        ("-ab.com", false),
        ("ab-.com", false),
        ("ab.c-om", true),
        ("ab.-com", false),
        ("ab.com-", false),
        ("0101.com", true),
        ("001a.com", true),
        ("b.gbc.io:443", true),
        ("b.gbc.io", true),
        ("xn--n3h.com", true),
        ("Asdf.com", true),
        ("192.168.1.1:75050", true),
        ("192.168.1.1:750050", true),
        ("[fd00:1:2::3]:75050", true),
        ("[fd00:1:2::3]75050", false),
        ("[fd00:1:2::3]::75050", false),
        ("[fd00:1:2::3%eth0]:75050", false),
        ("[fd00123123123]:75050", true),
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true),
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true),
        ("fd00:1:2::3:75050", false),
    ];
    assert_eq!(rows.len(), 30);
    for (input, want) in rows {
        assert_eq!(grammar::valid_domain(input), want, "{input:?}");
    }
}

/// regexp_test.go `TestFullNameRegexp`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 63 rows, all kept (the `strings.Repeat` row is checked below the table).
#[test]
fn test_full_name_regexp() {
    let rows = [
        ("", No),
        ("short", Split("", "short")),
        ("simple/name", Split("simple", "name")),
        ("library/ubuntu", Split("library", "ubuntu")),
        ("docker/stevvooe/app", Split("docker", "stevvooe/app")),
        (
            "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
            Split("aa", "aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb"),
        ),
        ("aa/aa/bb/bb/bb", Split("aa", "aa/bb/bb/bb")),
        ("a/a/a/a", Split("a", "a/a/a")),
        ("a/a/a/a/", No),
        ("a//a/a", No),
        ("a", Split("", "a")),
        ("a/aa", Split("a", "aa")),
        ("a/aa/a", Split("a", "aa/a")),
        ("foo.com", Split("", "foo.com")),
        ("foo.com/", No),
        ("foo.com:8080/bar", Split("foo.com:8080", "bar")),
        ("foo.com:http/bar", No),
        ("foo.com/bar", Split("foo.com", "bar")),
        ("foo.com/bar/baz", Split("foo.com", "bar/baz")),
        ("localhost:8080/bar", Split("localhost:8080", "bar")),
        (
            "sub-dom1.foo.com/bar/baz/quux",
            Split("sub-dom1.foo.com", "bar/baz/quux"),
        ),
        ("blog.foo.com/bar/baz", Split("blog.foo.com", "bar/baz")),
        ("a^a", No),
        ("aa/asdf$$^/aa", No),
        ("asdf$$^/aa", No),
        ("aa-a/a", Split("aa-a", "a")),
        ("a-/a/a/a", No),
        ("foo.com/a-/a/a", No),
        ("-foo/bar", No),
        ("foo/bar-", No),
        ("foo-/bar", No),
        ("foo/-bar", No),
        ("_foo/bar", No),
        ("foo_bar", Split("", "foo_bar")),
        ("foo_bar.com", Split("", "foo_bar.com")),
        ("foo_bar.com:8080", No),
        ("foo_bar.com:8080/app", No),
        ("foo.com/foo_bar", Split("foo.com", "foo_bar")),
        ("____/____", No),
        ("_docker/_docker", No),
        ("docker_/docker_", No),
        (
            "b.gcr.io/test.example.com/my-app",
            Split("b.gcr.io", "test.example.com/my-app"),
        ),
        ("xn--n3h.com/myimage", Split("xn--n3h.com", "myimage")),
        ("xn--7o8h.com/myimage", Split("xn--7o8h.com", "myimage")),
        (
            "example.com/xn--7o8h.com/myimage",
            Split("example.com", "xn--7o8h.com/myimage"),
        ),
        (
            "example.com/some_separator__underscore/myimage",
            Split("example.com", "some_separator__underscore/myimage"),
        ),
        ("example.com/__underscore/myimage", No),
        ("example.com/..dots/myimage", No),
        ("example.com/.dots/myimage", No),
        ("example.com/nodouble..dots/myimage", No),
        ("example.com/nodouble..dots/myimage", No),
        ("docker./docker", No),
        (".docker/docker", No),
        ("docker-/docker", No),
        ("-docker/docker", No),
        ("do..cker/docker", No),
        ("do__cker:8080/docker", No),
        ("do__cker/docker", Split("", "do__cker/docker")),
        (
            "b.gcr.io/test.example.com/my-app",
            Split("b.gcr.io", "test.example.com/my-app"),
        ),
        (
            "registry.io/foo/project--id.module--name.ver---sion--name",
            Split(
                "registry.io",
                "foo/project--id.module--name.ver---sion--name",
            ),
        ),
        ("Asdf.com/foo/bar", Yes),
        ("Foo/FarB", No),
    ];
    assert_eq!(rows.len(), 62);
    for (input, want) in rows {
        let got = grammar::split_name(input);
        match want {
            No => assert!(got.is_err(), "{input:?} matched: {got:?}"),
            Yes => assert!(got.is_ok(), "{input:?}: {got:?}"),
            Split(domain, path) => assert_eq!(got, Ok((domain, path)), "{input:?}"),
        }
    }
    let long = format!("{}a", "a/".repeat(128));
    let rest = format!("{}a", "a/".repeat(127));
    assert_eq!(grammar::split_name(&long), Ok(("a", rest.as_str())));
}

/// regexp_test.go `TestReferenceRegexp`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 12 rows, all kept. Submatches are `(name, tag, digest)`, "" for none.
#[test]
fn test_reference_regexp() {
    let rows = [
        (
            "registry.com:8080/myapp:tag",
            Some(("registry.com:8080/myapp", "tag", "")),
        ),
        (
            "registry.com:8080/myapp@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some((
                "registry.com:8080/myapp",
                "",
                "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            )),
        ),
        (
            "registry.com:8080/myapp:tag2@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some((
                "registry.com:8080/myapp",
                "tag2",
                "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            )),
        ),
        ("registry.com:8080/myapp@sha256:badbadbadbad", None),
        ("registry.com:8080/myapp:invalid~tag", None),
        ("bad_hostname.com:8080/myapp:tag", None),
        (
            "localhost:8080@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some((
                "localhost",
                "8080",
                "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            )),
        ),
        (
            "localhost:8080/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some((
                "localhost:8080/name",
                "",
                "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            )),
        ),
        (
            "localhost:http/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            None,
        ),
        (
            "localhost@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            Some((
                "localhost",
                "",
                "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912",
            )),
        ),
        ("registry.com:8080/myapp@bad", None),
        ("registry.com:8080/myapp@2bad", None),
    ];
    assert_eq!(rows.len(), 12);
    for (input, want) in rows {
        let got = grammar::match_reference(input).map(|p| {
            let name = match p.domain {
                "" => p.path.to_string(),
                d => format!("{d}/{}", p.path),
            };
            (name, p.tag.unwrap_or(""), p.digest.unwrap_or(""))
        });
        match want {
            None => assert!(got.is_err(), "{input:?} matched: {got:?}"),
            Some((name, tag, digest)) => {
                assert_eq!(got, Ok((name.to_string(), tag, digest)), "{input:?}")
            }
        }
    }
}

/// regexp_test.go `TestIdentifierRegexp`, distribution/reference@0965666a6ade2e06035fe352e38344be1e68951a.
/// 5 rows, all kept.
#[test]
fn test_identifier_regexp() {
    let rows = [
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821",
            true,
        ),
        (
            "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C",
            false,
        ),
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf",
            false,
        ),
        (
            "sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821",
            false,
        ),
        (
            "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482",
            false,
        ),
    ];
    for (input, want) in rows {
        assert_eq!(grammar::is_identifier(input), want, "{input:?}");
    }
}
