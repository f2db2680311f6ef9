//! Property tests of the keyring (docs/property-tests.md): keys, patterns and image names come
//! from pull Secrets and provider configs, so from whoever may edit one. Nothing panics, the
//! glob stays within its step bound on hostile patterns inside the caps, and the kubelet's
//! plain cases hold for any host: a literal key covers its own host, a `*` per label covers
//! any host of as many labels, a path key covers the paths it prefixes.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::glob::{compile_glob, glob_match};
use super::*;

/// A DNS host of one to five labels, optionally with a port.
fn host() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..=5),
        prop::option::of(1u16..),
    )
        .prop_map(|(labels, port)| match port {
            Some(p) => format!("{}:{p}", labels.join(".")),
            None => labels.join("."),
        })
}

/// A repository path as an image name carries it.
fn repo_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", 1..=4).prop_map(|c| c.join("/"))
}

/// Keys and patterns over the bytes that matter to the URL and glob parsers.
fn hostile() -> impl Strategy<Value = String> {
    "[a-z0-9.*?\\[\\]\\\\^:/@%!-]{0,80}"
}

/// A pattern at the caps: up to [`MAX_WILDCARDS`] stars and classes in labels built to make a
/// naive matcher backtrack, never more than [`MAX_PATTERN_LEN`] bytes.
fn wildcard_heavy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("*".to_string()),
            Just("*a".to_string()),
            Just("?".to_string()),
            Just("[a-z]".to_string()),
            Just("[^.]".to_string()),
            "[a-z]{1,8}",
        ],
        1..=MAX_WILDCARDS,
    )
    .prop_map(|parts| {
        let mut p: String = parts.concat();
        p.truncate(MAX_PATTERN_LEN);
        // Truncation may cut a class; the glob then errs when reached, which is fine too.
        p
    })
}

proptest! {
    /// Any strings: an answer or an error, never a panic; errors only as documented.
    #[test]
    fn never_panics_on_arbitrary_strings(p in any::<String>(), t in any::<String>()) {
        let _ = urls_match(&p, &t);
        let _ = normalize_key(&p);
        let _ = check_pattern(&p);
        let _ = is_default_registry_match(&t);
        let _ = image_allowed([p.as_str()], &t);
    }

    /// The same over the URL and glob alphabet, which reaches the parsers' every branch; what
    /// `normalize_key` returns is within the caps.
    #[test]
    fn never_panics_on_url_and_glob_alphabet(p in hostile(), t in hostile()) {
        let _ = urls_match(&p, &t);
        if let Ok(k) = normalize_key(&p) {
            prop_assert!(check_caps(&k).is_ok());
        }
        let mut ring = Keyring::new();
        let _ = ring.add(&p, 1);
        let _ = ring.add(&t, 2);
        let _ = ring.lookup(&t);
        let _ = ring.lookup(&p);
    }

    /// Hostile patterns within the caps against long labels: the glob takes at most
    /// `(label + 1) × (elements + 1)` steps, and a whole match is fast.
    #[test]
    fn wildcard_heavy_patterns_stay_within_the_step_bound(
        pattern in wildcard_heavy(),
        label in "[a-z]{0,200}",
        n in 1usize..=4,
    ) {
        let elems = compile_glob(pattern.as_bytes());
        let mut steps = 0;
        let _ = glob_match(&elems, label.as_bytes(), &mut steps);
        let bound = (label.len() as u64 + 1) * (elems.len() as u64 + 1);
        prop_assert!(steps <= bound, "{} steps > {}", steps, bound);

        // As URLs: n labels of the pattern against n long labels of the target.
        let glob = vec![pattern.replace(['.', '/', ':', '@', '%'], ""); n].join(".");
        let target = vec![label.as_str(); n].join(".");
        let target = &target[..target.len().min(MAX_TARGET_LEN)];
        let start = Instant::now();
        let _ = urls_match(&glob, target);
        prop_assert!(start.elapsed() < Duration::from_millis(250), "{:?}", start.elapsed());
    }

    /// A key equal to the image's host covers every repository on it, with and without a
    /// scheme, and as the docker CLI writes Docker Hub's (`https://<host>/v1/`).
    #[test]
    fn a_literal_host_key_covers_its_host(h in host(), path in repo_path()) {
        let image = format!("{h}/{path}");
        prop_assert_eq!(urls_match(&h, &image), Ok(true));
        for key in [h.clone(), format!("https://{h}"), format!("http://{h}/v1/"), format!("{h}/")] {
            prop_assert_eq!(normalize_key(&key), Ok(h.clone()), "{:?}", key);
            let mut ring = Keyring::new();
            ring.add(&key, ()).unwrap();
            prop_assert_eq!(ring.lookup(&image).len(), 1, "{:?} vs {:?}", key, image);
        }
    }

    /// A key with a path covers exactly the image names it is a string prefix of, on its host.
    #[test]
    fn a_path_key_covers_what_it_prefixes(h in host(), path in repo_path(), cut in any::<prop::sample::Index>()) {
        let image = format!("{h}/{path}");
        let prefix = &path[..cut.index(path.len()) + 1];
        prop_assert_eq!(urls_match(&format!("{h}/{prefix}"), &image), Ok(true));
        prop_assert_eq!(urls_match(&format!("{h}/{path}x"), &image), Ok(false));
    }

    /// One `*` per label covers any host with as many labels and the same port, and nothing
    /// with one label more or less.
    #[test]
    fn a_star_per_label_covers_hosts_of_that_many_labels(h in host(), path in repo_path()) {
        let (name, port) = match h.split_once(':') {
            Some((n, p)) => (n, format!(":{p}")),
            None => (h.as_str(), String::new()),
        };
        let labels = name.split('.').count();
        let image = format!("{h}/{path}");
        let stars = |n: usize| vec!["*"; n].join(".") + &port;
        prop_assert_eq!(urls_match(&stars(labels), &image), Ok(true));
        prop_assert_eq!(urls_match(&stars(labels + 1), &image), Ok(false));
        if labels > 1 {
            prop_assert_eq!(urls_match(&stars(labels - 1), &image), Ok(false));
        }
        // A different port, or none where there is one, never matches.
        let other = if port.is_empty() { ":1".to_string() } else { String::new() };
        prop_assert_eq!(urls_match(&(vec!["*"; labels].join(".") + &other), &image), Ok(false));
    }

    /// Lookup order: of two covering keys, the longer path comes first, as the kubelet's
    /// reverse-sorted index has it. (A key path starting `v1/` or `v2/` loses that prefix, as
    /// the kubelet has it from docker's `ResolveAuthConfig`; that is not this property.)
    #[test]
    fn more_specific_keys_come_first(h in host(), path in repo_path()) {
        prop_assume!(!path.starts_with("v1/") && !path.starts_with("v2/"));
        let mut ring = Keyring::new();
        ring.add(&h, "host").unwrap();
        ring.add(&format!("{h}/{path}"), "repo").unwrap();
        prop_assert_eq!(ring.lookup(&format!("{h}/{path}")), vec![&"repo", &"host"]);
    }
}

/// Over-cap keys, patterns and names are refused before any matching, whatever they hold.
#[test]
fn proptest_caps_refuse_before_matching() {
    let long = "a".repeat(MAX_PATTERN_LEN + 1);
    assert!(matches!(
        urls_match(&long, "a"),
        Err(PatternError::TooLong { .. })
    ));
    let stars = "*".repeat(MAX_WILDCARDS + 1);
    assert!(matches!(
        normalize_key(&stars),
        Err(PatternError::TooManyWildcards { .. })
    ));
    let target = "a".repeat(MAX_TARGET_LEN + 1);
    assert!(matches!(
        urls_match("a", &target),
        Err(PatternError::TargetTooLong { .. })
    ));
    // `%2A` unescapes to `*`: the caps are checked again after normalisation.
    let escaped = format!("a/{}", "%2A".repeat(MAX_WILDCARDS + 1));
    assert!(matches!(
        normalize_key(&escaped),
        Err(PatternError::TooManyWildcards { .. })
    ));
}
