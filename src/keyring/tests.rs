//! The kubelet's own test tables (cited above each), the regressions of issue 15, and what the
//! kubelet does that a reader might not expect.

use super::glob::{compile_glob, glob_match};
use super::*;

fn cred_keyring(keys: &[(&str, &'static str)]) -> Keyring<&'static str> {
    let mut keyring = Keyring::new();
    for (key, value) in keys {
        keyring.add(key, *value).unwrap();
    }
    keyring
}

// kubernetes/kubernetes pkg/credentialprovider/keyring_test.go, TestURLsMatch. 18 cases: 15 are
// in 6fbbec6ac5711b8c65a2420394b2bb2a2ccf5bff (there TestUrlsMatch); the three `*kubernetes.io`
// and `*.*.*.kubernetes.io` ones come from a later revision (the one with
// `ReadDockerConfigFileFromBytes`) that the search index holds without naming its commit.
#[test]
fn kubelet_test_urls_match() {
    let cases = [
        // match when there is no path component
        ("*.kubernetes.io", "prefix.kubernetes.io", true),
        ("prefix.*.io", "prefix.kubernetes.io", true),
        ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
        ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
        // match with path components
        ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true),
        ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true),
        // match with path components and ports
        (
            "*.kubernetes.io:1111/blah",
            "prefix.kubernetes.io:1111/blah",
            true,
        ),
        (
            "prefix.*.io:1111/foo",
            "prefix.kubernetes.io:1111/foo/bar",
            true,
        ),
        // no match when number of parts mismatch
        ("*.kubernetes.io", "kubernetes.io", false),
        ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
        ("*.*.kubernetes.io", "kubernetes.io", false),
        ("*kubernetes.io", "a.kubernetes.io", false),
        // match when number of parts match
        ("*kubernetes.io", "kubernetes.io", true),
        ("*.*.*.kubernetes.io", "a.b.c.kubernetes.io", true),
        // no match when some parts mismatch
        ("kubernetes.io", "kubernetes.com", false),
        ("k*.io", "quay.io", false),
        // no match when ports mismatch
        (
            "*.kubernetes.io:1234/blah",
            "prefix.kubernetes.io:1111/blah",
            false,
        ),
        (
            "prefix.*.io/foo",
            "prefix.kubernetes.io:1111/foo/bar",
            false,
        ),
    ];
    assert_eq!(cases.len(), 18);
    for (glob, target, want) in cases {
        assert_eq!(urls_match(glob, target), Ok(want), "{glob} vs {target}");
    }
}

// keyring_test.go @ 6fbbec6ac5711b8c65a2420394b2bb2a2ccf5bff, TestDockerKeyringForGlob: the
// key as written in a docker config; Lookup(target + "/foo/bar") must find it. 16 cases.
#[test]
fn kubelet_test_docker_keyring_for_glob() {
    let cases = [
        ("https://hello.kubernetes.io", "hello.kubernetes.io"),
        ("https://*.docker.io", "prefix.docker.io"),
        ("https://prefix.*.io", "prefix.docker.io"),
        ("https://prefix.docker.*", "prefix.docker.io"),
        ("https://*.docker.io/path", "prefix.docker.io/path"),
        ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
        ("https://prefix.docker.*/path", "prefix.docker.io/path"),
        ("https://*.docker.io:8888", "prefix.docker.io:8888"),
        ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
        ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
        (
            "https://*.docker.io/path:1111",
            "prefix.docker.io/path:1111",
        ),
        ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
        ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
        (
            "https://prefix.docker.*/path:1111",
            "prefix.docker.io/path:1111",
        ),
        ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
        ("*.docker.io:1111", "prefix.docker.io:1111/path"),
    ];
    assert_eq!(cases.len(), 16);
    for (key, target) in cases {
        let keyring = cred_keyring(&[(key, "foo")]);
        assert_eq!(
            keyring.lookup(&format!("{target}/foo/bar")),
            [&"foo"],
            "{key}"
        );
    }
}

// keyring_test.go @ 6fbbec6a, TestKeyringMiss: Lookup(lookup + "/foo/bar") finds nothing.
// 6 cases.
#[test]
fn kubelet_test_keyring_miss() {
    let cases = [
        ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
        ("https://*.docker.com", "prefix.docker.io"),
        ("https://suffix.*.io", "prefix.docker.io"),
        ("https://prefix.docker.c*", "prefix.docker.io"),
        (
            "https://prefix.*.io/path:1111",
            "prefix.docker.io/path/subpath:1111",
        ),
        ("suffix.*.io", "prefix.docker.io"),
    ];
    assert_eq!(cases.len(), 6);
    for (key, lookup) in cases {
        let keyring = cred_keyring(&[(key, "foo")]);
        assert!(
            keyring.lookup(&format!("{lookup}/foo/bar")).is_empty(),
            "{key}"
        );
    }
}

/// The Docker Hub key of the four tests below: `"https://" + defaultRegistryKey`.
const HUB_KEY: &str = "https://index.docker.io/v1/";

// keyring_test.go @ 6fbbec6a: TestKeyringMissWithDockerHubCredentials,
// TestKeyringHitWithUnqualifiedDockerHub, TestKeyringHitWithUnqualifiedLibraryDockerHub,
// TestKeyringHitWithQualifiedDockerHub. One case each.
#[test]
fn kubelet_test_keyring_docker_hub() {
    let keyring = cred_keyring(&[(HUB_KEY, "foo")]);
    assert!(keyring.lookup("world.mesos.org/foo/bar").is_empty());
    assert_eq!(keyring.lookup("google/docker-registry"), [&"foo"]);
    assert_eq!(keyring.lookup("jenkins"), [&"foo"]);
    // `url + "/google/docker-registry"` with url = defaultRegistryKey; upstream allows up to 2.
    assert_eq!(
        keyring.lookup("index.docker.io/v1//google/docker-registry"),
        [&"foo"]
    );
}

// keyring_test.go @ 6fbbec6a, TestIsDefaultRegistryMatch. 8 cases.
#[test]
fn kubelet_test_is_default_registry_match() {
    let cases = [
        ("foo/bar", true),
        ("docker.io/foo/bar", true),
        ("index.docker.io/foo/bar", true),
        ("foo", true),
        ("", false),
        ("registry.tld/foo/bar", false),
        ("registry:5000/foo/bar", false),
        ("myhostdocker.io/foo/bar", false),
    ];
    for (image, want) in cases {
        assert_eq!(is_default_registry_match(image), want, "{image:?}");
    }
}

// keyring_test.go @ 6fbbec6a, TestDockerKeyringLookup. 7 cases.
#[test]
fn kubelet_test_docker_keyring_lookup() {
    let keyring = cred_keyring(&[
        ("bar.example.com/pong", "grace"),
        ("bar.example.com", "ada"),
    ]);
    let cases: [(&str, &[&str]); 7] = [
        // direct match
        ("bar.example.com", &["ada"]),
        // direct match deeper than other possible matches
        ("bar.example.com/pong", &["grace", "ada"]),
        // no direct match, deeper path ignored
        ("bar.example.com/ping", &["ada"]),
        // match first part of path token
        ("bar.example.com/pongz", &["grace", "ada"]),
        // match regardless of sub-path
        ("bar.example.com/pong/pang", &["grace", "ada"]),
        // no host match
        ("example.com", &[]),
        ("foo.example.com", &[]),
    ];
    for (image, want) in cases {
        let got: Vec<&str> = keyring.lookup(image).into_iter().copied().collect();
        assert_eq!(got, want, "{image}");
    }
}

// keyring_test.go @ 6fbbec6a, TestIssue3797: a key with scheme and `/v1/` path matches
// images that name only its host. 3 cases.
#[test]
fn kubelet_test_issue_3797() {
    let keyring = cred_keyring(&[("https://quay.io/v1/", "rex")]);
    for image in ["quay.io", "quay.io/foo", "quay.io/foo/bar"] {
        assert_eq!(keyring.lookup(image), [&"rex"], "{image}");
    }
}

// pkg/credentialprovider/plugin/plugin_test.go (2b02db1be88b09193d96585c4b6dd796d6b2e06c, and
// the same cases in the later perPodPluginProvider revision), Test_Provide: the provider must
// be invoked, i.e. isImageAllowed(image). 6 cases.
#[test]
fn kubelet_test_provide_match_images() {
    let cases = [
        ("test.registry.io", "test.registry.io/foo/bar"),
        ("test.registry.io/foo/bar", "test.registry.io/foo/bar"),
        ("test.registry.io", "test.registry.io"),
        ("*.registry.io:8080", "test.registry.io:8080/foo"),
        ("*.*.registry.io", "foo.bar.registry.io/foo/bar"),
        ("*.registry.io", "test.registry.io"),
    ];
    for (pattern, image) in cases {
        assert_eq!(check_pattern(pattern), Ok(()));
        assert!(image_allowed([pattern], image), "{pattern} vs {image}");
        // The plugin answers with the same key in `auth`; the kubelet's keyring then serves
        // the image with it (the returned DockerConfig of the test).
        let mut ring = Keyring::new();
        ring.add(pattern, "user").unwrap();
        assert_eq!(
            ring.lookup(image),
            [&"user"],
            "auth key {pattern} for {image}"
        );
    }
}

// plugin_test.go @ 2b02db1b, Test_ProvideParallel: four matchImages, images
// `<registry>/<5 random letters>` (fixed letters here). 4 cases.
#[test]
fn kubelet_test_provide_parallel_match_images() {
    let match_images = [
        "test1.registry.io",
        "test2.registry.io",
        "test3.registry.io",
        "test4.registry.io",
    ];
    for registry in match_images {
        assert!(image_allowed(match_images, &format!("{registry}/qwxyz")));
    }
    assert!(!image_allowed(match_images, "test.registry.io/qwxyz"));
}

// pkg/credentialprovider/plugin/config_test.go @ ad8666ce88d1c812c15e7150d472040f3904b5d3:
// every matchImages value of Test_readCredentialProviderConfigFile (accepted) and of
// Test_validateCredentialProviderConfig ("invalid match image" refused, the rest accepted).
#[test]
fn kubelet_test_validate_match_images() {
    for pattern in [
        "registry.io/foobar",
        "registry.io/*",
        "foobar.registry.io/*",
        "registry.io/one",
        "registry.io/two",
        "foobar.registry.io",
        "bar.registry.io",
    ] {
        assert_eq!(check_pattern(pattern), Ok(()), "{pattern}");
    }
    // `parse "https://%invalid%": invalid URL escape "%in"`
    assert_eq!(
        check_pattern("%invalid%"),
        Err(PatternError::Unparsable(UrlError::Escape))
    );
    // The path is a plain prefix, not a glob: `registry.io/*` covers no ordinary image.
    assert!(!image_allowed(["registry.io/*"], "registry.io/foo"));
}

// ---- issue 15, point 1 ----

#[test]
fn issue_15_alternating_stars_stay_linear() {
    let label = "a".repeat(63);
    let pattern = "*a*a*a*a*a*a*a*a*a*a*b.example";
    assert_eq!(check_pattern(pattern), Ok(()));
    assert_eq!(urls_match(pattern, &format!("{label}.example")), Ok(false));

    let elems = compile_glob(b"*a*a*a*a*a*a*a*a*a*a*b");
    let mut steps = 0;
    assert_eq!(glob_match(&elems, label.as_bytes(), &mut steps), Ok(false));
    let bound = (label.len() as u64 + 1) * (elems.len() as u64 + 1);
    assert!(steps <= bound, "{steps} steps, bound {bound}");
}

#[test]
fn issue_15_huge_patterns_are_refused_and_the_matcher_has_no_recursion() {
    let stars = "*".repeat(300_000);
    assert_eq!(
        check_pattern(&stars),
        Err(PatternError::TooLong {
            len: 300_000,
            max: MAX_PATTERN_LEN
        })
    );
    assert!(urls_match(&stars, "a.example").is_err());
    let mut keyring = Keyring::new();
    assert!(keyring.add(&stars, ()).is_err());
    assert!(keyring.is_empty());

    // Past the caps, straight into the matcher: no stack to overflow, cost pattern × label.
    let label = "a".repeat(63);
    let elems = compile_glob(stars.as_bytes());
    assert_eq!(glob_match(&elems, label.as_bytes(), &mut 0), Ok(true));
    let alternating = format!("{}b", "*a".repeat(150_000));
    let elems = compile_glob(alternating.as_bytes());
    let mut steps = 0;
    assert_eq!(glob_match(&elems, label.as_bytes(), &mut steps), Ok(false));
    assert!(steps <= (label.len() as u64 + 1) * (elems.len() as u64 + 1));
}

#[test]
fn caps_name_the_limit() {
    let many = format!("{}.example", "*".repeat(MAX_WILDCARDS + 1));
    assert_eq!(
        check_pattern(&many),
        Err(PatternError::TooManyWildcards {
            count: MAX_WILDCARDS + 1,
            max: MAX_WILDCARDS
        })
    );
    assert_eq!(
        check_pattern(&format!("{}.example", "*".repeat(MAX_WILDCARDS))),
        Ok(())
    );
    let long = "a".repeat(MAX_PATTERN_LEN + 1);
    assert_eq!(
        check_pattern(&long).unwrap_err().to_string(),
        "pattern is 513 bytes, over the limit of 512"
    );
    let target = format!("h.example/{}", "a".repeat(MAX_TARGET_LEN));
    assert!(matches!(
        urls_match("h.example", &target),
        Err(PatternError::TargetTooLong { .. })
    ));
    // `%2A` unescapes to `*`: counted once the key is normalized.
    let escaped = format!("h.example/{}", "%2A".repeat(MAX_WILDCARDS + 1));
    assert_eq!(
        normalize_key(&escaped),
        Err(PatternError::TooManyWildcards {
            count: MAX_WILDCARDS + 1,
            max: MAX_WILDCARDS
        })
    );
}

// ---- what the kubelet does that a reader might not expect ----

#[test]
fn add_normalizes_keys_as_the_kubelet() {
    let cases = [
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("index.docker.io/v1/", "index.docker.io"),
        ("http://quay.io/v2/team", "quay.io/team"),
        ("quay.io/", "quay.io"),
        // `/v1` without the slash is an ordinary path.
        ("quay.io/v1", "quay.io/v1"),
        ("https://user:pw@h.example/team?x=1#frag", "h.example/team"),
        // A `?` ends the host: the kubelet never sees it as a glob there.
        ("exa?mple.com", "exa"),
        ("h.example/a%20b", "h.example/a b"),
        ("h.example:5000", "h.example:5000"),
        ("[::1]:5000/team", "[::1]:5000/team"),
        // The scheme test is case-sensitive, so this is host `HTTPS:`, path `//h.example`.
        ("HTTPS://h.example", "HTTPS://h.example"),
    ];
    for (key, want) in cases {
        assert_eq!(normalize_key(key).as_deref(), Ok(want), "{key}");
    }
}

#[test]
fn keys_the_kubelet_cannot_parse_are_refused() {
    let cases = [
        ("%invalid%", UrlError::Escape),
        ("h.example/%zz", UrlError::Escape),
        ("h%41.example", UrlError::Escape),
        ("h.example:port", UrlError::Port),
        ("a:1:2", UrlError::Port),
        ("h ex.example", UrlError::HostCharacter),
        ("h\\x.example", UrlError::HostCharacter),
        // Current Go: `[` only opens an IPv6 literal at the start of the host.
        ("reg[0-9].example", UrlError::IpLiteral),
        ("[1.2.3.4]:5000", UrlError::IpLiteral),
        ("[::1", UrlError::IpLiteral),
        ("[fe80::1%25]:5000", UrlError::IpLiteral),
        ("us^er@h.example", UrlError::Userinfo),
        ("h.example/\tx", UrlError::ControlCharacter),
    ];
    for (key, want) in cases {
        assert_eq!(
            normalize_key(key),
            Err(PatternError::Unparsable(want)),
            "{key}"
        );
        assert_eq!(
            check_pattern(key),
            Err(PatternError::Unparsable(want)),
            "{key}"
        );
        let mut keyring = Keyring::new();
        assert!(keyring.add(key, ()).is_err());
    }
    assert_eq!(
        normalize_key("h.example/%C3"),
        Err(PatternError::Unparsable(UrlError::NotUtf8))
    );
}

#[test]
fn ecr_hosts_and_the_eks_default_match_images() {
    let image = "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/app";
    for pattern in [
        "818140567777.dkr.ecr.us-east-1.amazonaws.com",
        "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm",
        // The path is a string prefix, not a segment prefix.
        "818140567777.dkr.ecr.us-east-1.amazonaws.com/consult",
        "*.dkr.ecr.us-east-1.amazonaws.com",
        "*.dkr.ecr.*.amazonaws.com",
        "8181*.dkr.ecr.us-*-1.amazonaws.com",
    ] {
        assert_eq!(urls_match(pattern, image), Ok(true), "{pattern}");
    }
    for pattern in [
        "818140567777.dkr.ecr.eu-west-1.amazonaws.com",
        "818140567777.dkr.ecr.us-east-1.amazonaws.com/other",
        "*.amazonaws.com",
        "*.dkr.ecr.*.amazonaws.com.cn",
        "*.dkr-ecr.*.on.aws",
        "818140567777.dkr.ecr.us-east-1.amazonaws.com:443",
        // Hosts are compared as written.
        "818140567777.DKR.ecr.us-east-1.amazonaws.com",
    ] {
        assert_eq!(urls_match(pattern, image), Ok(false), "{pattern}");
    }
    assert!(image_allowed(
        ["*.dkr.ecr.*.amazonaws.com.cn", "*.dkr-ecr.*.on.aws"],
        "111122223333.dkr-ecr.us-west-2.on.aws/app"
    ));
}

#[test]
fn docker_hub_images_use_docker_io_keys_or_the_index_fallback() {
    let image = "docker.io/library/busybox";
    // `docker.io` matches directly; `index.docker.io` only through the fallback.
    assert_eq!(cred_keyring(&[("docker.io", "d")]).lookup(image), [&"d"]);
    assert_eq!(cred_keyring(&[(HUB_KEY, "i")]).lookup(image), [&"i"]);
    assert_eq!(
        cred_keyring(&[("index.docker.io", "i")]).lookup(image),
        [&"i"]
    );
    // No other alias is the kubelet's.
    for key in [
        "registry-1.docker.io",
        "registry.hub.docker.com",
        "https://docker.io/v1/x",
    ] {
        assert!(
            cred_keyring(&[(key, "x")]).lookup(image).is_empty(),
            "{key}"
        );
    }
    // The fallback is only for when no key matched at all.
    let keyring = cred_keyring(&[(HUB_KEY, "i"), ("*.io", "star")]);
    assert_eq!(keyring.lookup(image), [&"star"]);
    assert!(keyring.lookup("quay.io/x").contains(&&"star"));
    assert!(keyring.lookup("ghcr.example/x").is_empty());
}

#[test]
fn lookup_order_is_reverse_sorted_keys_then_insertion_order() {
    let mut keyring = Keyring::new();
    keyring.add("quay.io", "host-1").unwrap();
    keyring.add("quay.io/team", "team").unwrap();
    keyring.add("https://quay.io/v1/", "host-2").unwrap();
    keyring.add("*.io", "star").unwrap();
    let got: Vec<&str> = keyring
        .lookup("quay.io/team/app")
        .into_iter()
        .copied()
        .collect();
    // `quay.io/team` > `quay.io` > `*.io` in byte order.
    assert_eq!(got, ["team", "host-1", "host-2", "star"]);
}

#[test]
fn ports_and_ip_literals() {
    assert_eq!(
        urls_match("127.0.0.1:5000", "127.0.0.1:5000/team/app"),
        Ok(true)
    );
    assert_eq!(
        urls_match("127.0.0.1", "127.0.0.1:5000/team/app"),
        Ok(false)
    );
    assert_eq!(urls_match("127.0.0.*:5000", "127.0.0.1:5000/x"), Ok(true));
    // An empty port is no port.
    assert_eq!(urls_match("h.example:", "h.example/x"), Ok(true));
    assert_eq!(urls_match("[::1]:5000", "[::1]:5000/app"), Ok(true));
    // Without a port, SplitHostPort keeps the brackets and `[::1]` is read as a class.
    assert_eq!(urls_match("[::1]", "[::1]/app"), Ok(false));
    // IPv4-mapped without a port: the label `[::ffff:1` is a broken class.
    assert_eq!(
        urls_match("[::ffff:1.2.3.4]", "[::ffff:1.2.3.4]/app"),
        Err(PatternError::BadGlob)
    );
    assert_eq!(
        urls_match("h.example", "h ex.example/app"),
        Err(PatternError::TargetUnparsable(UrlError::HostCharacter))
    );
}

#[test]
fn errors_do_not_carry_the_pattern() {
    let secretish = "s3cr3t-looking-key-material";
    for err in [
        check_pattern(&format!("{secretish}%zz")).unwrap_err(),
        check_pattern(&format!("{}{secretish}", "a".repeat(600))).unwrap_err(),
    ] {
        assert!(!err.to_string().contains(secretish), "{err}");
    }
}
