//! Upstream's own test tables, transcribed from `github.com/distribution/reference` at commit
//! 0965666a6ade2e06035fe352e38344be1e68951a (2026-04-18; same accept/refuse behaviour as the
//! v0.6.0 tag the kubelet and containerd use), so "agrees with upstream" is checked, not
//! claimed. Inputs and expected results are upstream's; the one expectation we changed is
//! marked DIFFERS where it stands.
//!
//! Not transcribed, because we do not model what they test: `TestSerialization` (the JSON
//! `Field` wrapper), `TestWithTag` and `TestWithDigest` (building references from parts),
//! `TestInvalidReferenceComponents` (those builders' checks), `TestParseAnyReference` (bare
//! image IDs and digests as references; an image to pull always has a name), and `TestMatch`
//! and `TestMatchError` (`FamiliarMatch` globbing).

mod normalize_test;
mod reference_test;
mod regexp_test;

use super::ImageRef;

/// Every input the tables above expect to parse one way or another.
fn all_inputs() -> Vec<String> {
    let mut v: Vec<String> = reference_test::reference_parse()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let (a, b) = normalize_test::validate_reference_name();
    let (c, d) = normalize_test::validate_remote_name();
    v.extend(a.into_iter().chain(b).chain(c).chain(d).map(str::to_string));
    for (_, familiar, full, ambiguous, _) in normalize_test::parse_repository_info() {
        v.extend([familiar, full, ambiguous].map(str::to_string));
    }
    v.extend(
        normalize_test::normalized_split_hostname()
            .into_iter()
            .map(|r| r.0.to_string()),
    );
    v.extend(
        normalize_test::parse_docker_ref()
            .into_iter()
            .map(|r| r.0.to_string()),
    );
    v
}

/// `normalized()` is a reference in its own right, naming the same image: parsing it again
/// gives the same `ImageRef` but for `original`, and but for a tag written beside a digest,
/// which `ParseDockerRef` drops.
#[test]
fn normalized_reparses_to_the_same_reference() {
    let mut accepted = 0;
    for input in all_inputs() {
        let Ok(r) = input.parse::<ImageRef>() else {
            continue;
        };
        accepted += 1;
        let n = r.normalized();
        let again: ImageRef = n
            .parse()
            .unwrap_or_else(|e| panic!("{input:?} -> {n:?}: {e}"));
        let mut want = r.clone();
        want.original = n.clone();
        if want.digest.is_some() {
            want.tag = None;
        }
        assert_eq!(again, want, "{input:?} -> {n:?}");
        assert_eq!(again.normalized(), n, "normalized() is a fixed point");
    }
    assert!(accepted > 100, "only {accepted} inputs accepted");
}
