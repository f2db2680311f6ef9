//! Faults no real server produces on demand, from the fake registry in `common::fault`,
//! reached under the demo ECR host name so the whole real ECR-token path runs first.

mod common;

use std::time::{Duration, Instant};

use common::fault::{Fault, FaultRegistry};
use common::*;

fn run_against(fault: Fault, extra: &[&str]) -> (FaultRegistry, Run) {
    let s = Stack::get();
    let fake = FaultRegistry::start(fault);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let mut args = vec!["check".to_string(), s.image("faulty:latest")];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = probe(
        &args,
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    (fake, run)
}

/// The fake as a registry that is not ECR (`mirror.example`), checked without credentials.
fn run_as_mirror(fault: Fault) -> (FaultRegistry, Run) {
    let fake = FaultRegistry::start(fault);
    let endpoint = format!("mirror.example=http://{}", fake.addr);
    let run = probe(
        &["check", "mirror.example/consultingfirm/faulty:latest"],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    (fake, run)
}

#[test]
fn the_fake_registry_itself_passes_when_well_behaved() {
    let (_, run) = run_against(Fault::None, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report()["images"][0]["verdict"], "pass");
}

#[test]
fn a_corrupt_blob_is_caught_by_its_digest() {
    let (fake, run) = run_against(Fault::CorruptLayer, &[]);
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "BLOB_DIGEST_MISMATCH");
    assert_eq!(f["evidence"]["digest"], fake.layer_digest);
    assert_ne!(f["evidence"]["actual_digest"], fake.layer_digest);
    assert_eq!(stage(&img["stages"], "layers")["status"], "fail");
    let layer = img["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "layer")
        .unwrap();
    assert_eq!(layer["status"], "fail");
}

#[test]
fn a_truncated_blob_is_named_with_the_bytes_received() {
    let (fake, run) = run_against(Fault::TruncatedLayer, &[]);
    assert_eq!(run.code, 1);
    let r = run.report();
    let f = finding(&r["images"][0], "BLOB_TRUNCATED");
    assert_eq!(f["evidence"]["expected"], fake.layer_size);
    assert_eq!(f["evidence"]["received"], fake.layer_size / 2);
}

#[test]
fn a_stalled_server_cannot_outlast_the_deadline() {
    let start = Instant::now();
    let (_, run) = run_against(Fault::StallLayer, &["--timeout", "2s"]);
    // The stall lasts an hour; the run must end soon after its 2 s deadline.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(run.code, 3, "a deadline is inconclusive, not a refusal");
    let r = run.report();
    let f = finding(&r["images"][0], "DEADLINE_EXCEEDED");
    assert_eq!(f["evidence"]["stage"], "layers");
}

#[test]
fn a_redirect_to_storage_drops_the_authorization_header() {
    let (fake, run) = run_against(Fault::RedirectLayer, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let layer = r["images"][0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["kind"] == "layer")
        .unwrap()
        .clone();
    assert_eq!(layer["redirected"], true);
    assert_ne!(layer["served_by"], fake.addr.to_string());
    assert_eq!(layer["bytes"], fake.layer_size);
    let storage: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.server == "storage")
        .collect();
    assert_eq!(storage.len(), 1);
    assert!(
        !storage[0].authorization,
        "Authorization must not follow a redirect to another host"
    );
    assert!(
        fake.seen()
            .iter()
            .filter(|s| s.server == "registry" && s.path != "/v2/")
            .all(|s| s.authorization)
    );
    // The presigned URL's signature never reaches the output.
    assert!(
        !run.stdout.contains("PRESIGNED-SIGNATURE-VALUE")
            && !run.stderr.contains("PRESIGNED-SIGNATURE-VALUE")
    );
}

#[test]
fn an_unreachable_storage_host_is_layer_storage_unreachable() {
    let (_, run) = run_against(Fault::RedirectRefused, &[]);
    assert_eq!(run.code, 3, "storage not reached is inconclusive");
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "LAYER_STORAGE_UNREACHABLE");
    assert_eq!(
        f["evidence"]["expected_storage"],
        "prod-us-east-1-starport-layer-bucket"
    );
    assert_eq!(
        stage(&img["stages"], "manifest")["status"],
        "pass",
        "the manifest came through"
    );
    assert!(
        !run.stdout.contains("PRESIGNED-SIGNATURE-VALUE")
            && !run.stderr.contains("PRESIGNED-SIGNATURE-VALUE")
    );
}

/// Issue 15: a digest read from the wire is checked against the grammar before it becomes a
/// URL; the traversal dressed as a layer digest never reaches the registry.
#[test]
fn a_hostile_layer_digest_never_becomes_a_request() {
    let (fake, run) = run_against(Fault::HostileLayerDigest, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "MANIFEST_INVALID");
    assert!(f["summary"].as_str().unwrap().contains("digest"), "{f:#}");
    let paths: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("admin") && !p.contains("..")),
        "{paths:?}"
    );
}

#[test]
fn a_hostile_index_entry_cannot_fetch_another_repository() {
    let (fake, run) = run_against(Fault::HostileIndexEntry, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(stage(&img["stages"], "manifest")["status"], "fail");
    finding(img, "MANIFEST_INVALID");
    let paths: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert!(
        paths.iter().all(|p| !p.contains("other/secret")),
        "{paths:?}"
    );
}

#[test]
fn a_child_manifest_must_match_its_index_entry() {
    let (_, run) = run_against(Fault::IndexChildMismatch, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(stage(&img["stages"], "manifest")["status"], "fail");
    let f = finding(img, "MANIFEST_INVALID");
    assert!(
        f["summary"].as_str().unwrap().contains("asked for"),
        "{f:#}"
    );
}

/// Issue 15: a registry cannot send the probe to another loopback or link-local address (where
/// instance metadata lives) and have the answer echoed into the report.
#[test]
fn a_redirect_to_an_internal_address_is_refused_and_not_echoed() {
    let (fake, run) = run_against(Fault::RedirectToInternal, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "REGISTRY_REDIRECT_REFUSED");
    assert_eq!(f["evidence"]["host"], fake.bait.to_string());
    assert!(fake.seen().iter().all(|s| s.server != "bait"));
    assert!(!run.stdout.contains(common::fault::BAIT_SECRET));
}

#[test]
fn a_token_realm_on_an_internal_address_is_refused() {
    let (fake, run) = run_as_mirror(Fault::BearerRealmToInternal);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "REGISTRY_REDIRECT_REFUSED");
    assert!(
        f["summary"].as_str().unwrap().contains("127.0.0.2"),
        "{f:#}"
    );
    assert!(fake.seen().iter().all(|s| s.server != "bait"));
    assert!(!run.stdout.contains(common::fault::BAIT_SECRET));
}

/// Issue 23: a redirect or a realm to a *name* that resolves to loopback is refused as the
/// literal address is, before anything is sent there, and the refusal names the name.
#[test]
fn a_redirect_or_realm_to_a_name_resolving_to_loopback_is_refused() {
    let name = common::fault::loopback_name();
    let (_, run) = run_against(Fault::RedirectToInternalName(name), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "REGISTRY_REDIRECT_REFUSED");
    let host = f["evidence"]["host"].as_str().unwrap();
    assert!(host.starts_with(&format!("{name}:")), "{f:#}");
    let (_, run) = run_as_mirror(Fault::BearerRealmToInternalName(name));
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "REGISTRY_REDIRECT_REFUSED");
    assert!(f["summary"].as_str().unwrap().contains(name), "{f:#}");
}

/// Issue 15 point 9: a pull secret for a Bearer registry (Docker Hub, GHCR, Quay) is traded
/// for a token at the realm first, as a puller does; sending it as Basic to `/v2/` fails there.
#[test]
fn a_pull_secret_for_a_bearer_registry_is_exchanged_for_a_token() {
    let fake = FaultRegistry::start(Fault::BearerTokenExchange);
    let dir = tempfile::tempdir().unwrap();
    let (user, password) = common::fault::EXCHANGE_CREDENTIALS;
    let config = write_docker_config(dir.path(), "mirror.example", user, password);
    let endpoint = format!("mirror.example=http://{}", fake.addr);
    let run = probe(
        &[
            "check",
            "mirror.example/consultingfirm/faulty:latest",
            "--docker-config",
            config.to_str().unwrap(),
        ],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(
        img["paths"]["pull_secrets"]["status"], "pass",
        "{:#}",
        img["paths"]
    );
    // The pod's anonymous token request is refused: no credentials, no token.
    assert_eq!(img["paths"]["pod_identity"], "fail");
    assert!(
        !run.stdout.contains(common::fault::EXCHANGED_TOKEN)
            && !run.stderr.contains(common::fault::EXCHANGED_TOKEN)
    );
}

/// Issue 10: the images of a run share one login per registry and credentials: the `/v2/`
/// challenge and the credential check happen once, not once per image.
#[test]
fn images_of_one_registry_share_one_login() {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::None);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let images: Vec<String> = (1..=4)
        .map(|i| s.image(&format!("faulty-{i}:latest")))
        .collect();
    let mut args = vec!["check"];
    args.extend(images.iter().map(String::as_str));
    let run = probe(
        &args,
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let logins = fake.seen().iter().filter(|s| s.path == "/v2/").count();
    assert_eq!(
        logins, 2,
        "one anonymous challenge and one credential check"
    );
    let manifests = fake.requests_for("/manifests/");
    assert_eq!(manifests, 4, "each image still gets its own manifest");
}

/// Issue 11: a 503 on the first manifest request (with `Retry-After`) and a layer body that
/// breaks off once are retried, as the kubelet would retry the pull; the image passes and the
/// retries are in the report as warnings, so flakiness stays visible.
#[test]
fn transient_failures_are_retried_and_reported() {
    for (fault, stage_name, cause) in [
        (Fault::FlakyManifest, "manifest", "answered HTTP 503"),
        (Fault::FlakyLayer, "layers", "broke off after"),
    ] {
        let (_fake, run) = run_against(fault, &[]);
        assert_eq!(run.code, 0, "{fault:?}: {}", run.stdout);
        let r = run.report();
        let img = &r["images"][0];
        assert_eq!(img["verdict"], "pass");
        let st = stage(&img["stages"], stage_name);
        assert_eq!(st["status"], "warn", "{fault:?}: {st:#}");
        let f = finding(img, "REGISTRY_RETRIED");
        assert_eq!(f["evidence"]["retries"], 1);
        assert!(
            f["evidence"]["causes"][0].as_str().unwrap().contains(cause),
            "{fault:?}: {f:#}"
        );
    }
}

/// A failure that persists still fails, after the bounded retries, with every cause listed;
/// and what can never pass on another try (a 404, a corrupt blob) is not retried at all.
#[test]
fn persistent_failures_still_fail_and_permanent_ones_are_not_retried() {
    let (fake, run) = run_against(Fault::ThrottledLayer, &[]);
    assert_eq!(run.code, 1);
    let r = run.report();
    assert_eq!(r["retry_policy"]["registry_attempts"], 3);
    assert_eq!(r["retry_policy"]["aws_mode"], "standard");
    let layer_requests = fake.requests_for(&fake.layer_digest);
    assert_eq!(layer_requests, 3, "three tries in all");
    let retried = finding(&r["images"][0], "REGISTRY_RETRIED");
    assert_eq!(retried["evidence"]["retries"], 2);
    assert!(
        retried["summary"].as_str().unwrap().contains("HTTP 429"),
        "{retried:#}"
    );
    let (fake, run) = run_against(Fault::CorruptLayer, &[]);
    assert_eq!(run.code, 1);
    let layer_requests = fake.requests_for(&fake.layer_digest);
    assert_eq!(layer_requests, 1, "a digest mismatch is not retried");
    assert!(!codes(&run.report()["images"][0]).contains(&"REGISTRY_RETRIED".to_string()));
}

/// Issue 11 point 3: a layer that broke off is resumed where it stopped with a `Range`
/// request when the server honours it, and fetched whole again when it does not; either way
/// the digest is checked over every byte, and the cause says which happened.
#[test]
fn a_broken_off_layer_is_resumed_with_a_range_request() {
    for (fault, resumed) in [(Fault::FlakyLayer, true), (Fault::FlakyLayerNoRange, false)] {
        let (fake, run) = run_against(fault, &[]);
        assert_eq!(run.code, 0, "{fault:?}: {}", run.stdout);
        let r = run.report();
        let img = &r["images"][0];
        let tries: Vec<Option<u64>> = fake
            .seen()
            .iter()
            .filter(|s| s.path.ends_with(&fake.layer_digest))
            .map(|s| s.range)
            .collect();
        let half = (fake.layer_size / 2) as u64;
        assert_eq!(
            tries,
            [None, Some(half)],
            "{fault:?}: the second try asks for the rest"
        );
        let layer = img["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["kind"] == "layer")
            .unwrap();
        assert_eq!(
            layer["bytes"], fake.layer_size,
            "{fault:?}: every byte verified"
        );
        let cause = finding(img, "REGISTRY_RETRIED")["evidence"]["causes"][0]
            .as_str()
            .unwrap()
            .to_string();
        let said = if resumed {
            format!("resumed at byte {half}")
        } else {
            "the whole blob was fetched again".to_string()
        };
        assert!(cause.contains(&said), "{fault:?}: {cause}");
    }
}

/// Issue 11 point 2: every body and header block has a cap. A hostile registry sending far
/// more (8 MiB manifests and error bodies, 1,025 layers or index entries, a 1 MiB header) gets
/// a finding that names the cap; 100,000 nested arrays where the config belongs are refused at
/// the first bracket (typed decoding, no recursion). The probe reads no further, retries none
/// of it (the same server sends the same answer) and echoes none of it.
#[test]
fn a_hostile_registry_meets_a_cap_on_every_answer() {
    for (fault, code, said) in [
        (
            Fault::HugeManifest,
            "MANIFEST_INVALID",
            "larger than 4194304 bytes",
        ),
        (
            Fault::ManyLayers,
            "MANIFEST_INVALID",
            "1025 layers, more than the 1024",
        ),
        (
            Fault::HugeIndex,
            "MANIFEST_INVALID",
            "1025 manifests, more than the 1024",
        ),
        (
            Fault::DeepManifest,
            "MANIFEST_INVALID",
            "invalid type: sequence",
        ),
        (
            Fault::HugeHeaders,
            "REGISTRY_ERROR",
            "a header block over 400 KiB",
        ),
        (Fault::HugeErrorBody, "MANIFEST_NOT_FOUND", ""),
    ] {
        let (fake, run) = run_against(fault, &[]);
        assert_eq!(run.code, 1, "{fault:?}: {}", run.stdout);
        let r = run.report();
        let f = finding(&r["images"][0], code);
        assert!(
            f["summary"].as_str().unwrap().contains(said),
            "{fault:?}: {f:#}"
        );
        assert!(
            !codes(&r["images"][0]).contains(&"REGISTRY_RETRIED".to_string()),
            "{fault:?} is not retried"
        );
        assert!(
            run.stdout.len() < 64 << 10,
            "{fault:?}: the report echoes {} bytes",
            run.stdout.len()
        );
        let manifests = fake.requests_for("/manifests/");
        assert_eq!(manifests, 1, "{fault:?}: asked once");
    }
}

/// Issue 23: an index inside every cap (1,024 entries, about 4 MB) whose platform names are
/// 3.7 KB each, none the probe's. The platform list reached summary, evidence and fix whole
/// (11.7 MB for one image); now a list is 16 names of at most 64 characters and "… N more",
/// and the one-image report stays under 64 KiB (docs/limits.md).
#[test]
fn a_hostile_platform_index_gives_a_report_under_64_kib() {
    let (_, run) = run_against(Fault::HostilePlatformIndex, &[]);
    eprintln!("hostile platform index: report {} bytes", run.stdout.len());
    assert_eq!(run.code, 1, "{}", &run.stdout[..run.stdout.len().min(2000)]);
    assert!(
        run.stdout.len() < 64 << 10,
        "the report is {} bytes",
        run.stdout.len()
    );
    let r = run.report();
    let f = finding(&r["images"][0], "PLATFORM_NOT_IN_INDEX");
    assert!(
        f["summary"].as_str().unwrap().ends_with("… 1008 more"),
        "{}",
        f["summary"]
    );
    let available = f["evidence"]["available"].as_array().unwrap();
    assert_eq!(available.len(), 17);
    assert_eq!(available[16], "… 1008 more");
    assert!(f["remediation"].as_str().unwrap().len() <= 2048 + 64);
}

/// The Bearer token answer is capped too (64 KiB; real tokens are a few KiB).
#[test]
fn a_token_answer_past_its_cap_is_named() {
    let (_fake, run) = run_as_mirror(Fault::HugeTokenResponse);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.report();
    let f = finding(&r["images"][0], "REGISTRY_ERROR");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("larger than the 64 KiB accepted"),
        "{f:#}"
    );
    assert!(run.stdout.len() < 64 << 10);
}

/// Issue 12 point 2: `--registry-rate` spaces the requests to a registry (here 2 per second,
/// two at once): whatever the machine's speed, no request goes sooner than its slot. A bound
/// from below, so a slow machine cannot make it fail.
#[test]
fn a_registry_rate_spaces_the_requests() {
    let (fake, run) = run_against(Fault::None, &["--registry-rate", "2"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let at: Vec<_> = fake.seen().iter().map(|s| s.at).collect();
    assert!(at.len() >= 5, "challenge, login, manifest, config, layer");
    let slot = Duration::from_millis(500);
    for (i, t) in at.iter().enumerate().skip(2) {
        // Request i may go no sooner than (i - 1) slots after the first (a burst of two).
        let earliest = at[0] + slot * (i as u32 - 1);
        assert!(
            *t + Duration::from_millis(20) >= earliest,
            "request {i} went {:?} after the first",
            t.duration_since(at[0])
        );
    }
}
