//! What the container runtime's pull error means, as one of our codes: the canary's kubelet
//! message (an `ErrImagePull` event, a container status) classified so that its findings are
//! comparable with the other paths'. Pure.
//!
//! The phrases are the runtimes' own, recorded from the local stack by `tests/runtime.rs`:
//! containerd 1.6's (`tests/fixtures/runtime/containerd-*.json`) and containers/image 5.23's,
//! the library CRI-O pulls through, by skopeo (`tests/fixtures/runtime/skopeo-*.json`). CRI-O
//! puts its own words in front of the library's error, which the phrases here do not depend on
//! (cri-o/cri-o at f954a17e50): `unable to pull image: <err>`, or `unable to pull image or OCI
//! artifact: pull image err: <err>; artifact err: <err>` when it retried the reference as an
//! OCI artifact (`internal/storage/image.go`, `pullImageImplementation`), and
//! `RegistryUnavailable: ` before a refused connection (`server/image_pull.go`, `PullImage`);
//! the kubelet's gRPC client adds `rpc error: code = Unknown desc = `.
//!
//! containerd sends a HEAD to the registry and gets no body, so it often cannot say more than
//! the status: `not found` for a missing tag and a missing repository alike, and the same
//! `401 Unauthorized` for a wrong password and for none. containers/image reads the manifest
//! with GET and quotes the registry's error. The codes below say no more than the message does.

use super::Code;

/// The code a runtime's pull error stands for, if the message says enough.
pub fn runtime_message_code(message: &str) -> Option<Code> {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    // Order matters: an expired-token denial is also a "denied", a platform miss is also a
    // "not found".
    if has(&["authorization token has expired"]) {
        Some(Code::REGISTRY_TOKEN_EXPIRED)
    } else if has(&[
        "no match for platform in manifest",
        "no image found in manifest list for architecture",
        // containers/image 5.23 for an OCI index (5.x before it: "manifest list").
        "no image found in image index for architecture",
        "no matching manifest for",
    ]) {
        Some(Code::PLATFORM_NOT_IN_INDEX)
    } else if has(&[
        "x509:",
        "certificate signed by unknown authority",
        "tls: failed to verify certificate",
    ]) {
        Some(Code::REGISTRY_TLS_UNTRUSTED)
    } else if has(&[
        "401 unauthorized",
        "unauthorized: authentication required",
        "no basic auth credentials",
        "authorization failed",
        "invalid username/password",
    ]) {
        Some(Code::REGISTRY_UNAUTHORIZED)
    } else if has(&["/blobs/sha256:"]) && has(&["403 forbidden"]) {
        Some(Code::LAYER_DENIED)
    } else if has(&[
        "403 forbidden",
        "denied:",
        "requested access to the resource is denied",
    ]) {
        Some(Code::REGISTRY_DENIED)
    } else if has(&["name unknown", "repository name not known", "name_unknown"]) {
        Some(Code::REPOSITORY_NOT_FOUND)
    } else if has(&["manifest unknown", ": not found", "manifest_unknown"]) {
        Some(Code::MANIFEST_NOT_FOUND)
    } else if has(&[
        "unexpected commit digest",
        "digest mismatch",
        // containers/image's blob verification (`writing blob: happened during read: ...`).
        "digest did not match",
        "failed size validation",
        "does not match the digest",
    ]) {
        Some(Code::BLOB_DIGEST_MISMATCH)
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "network is unreachable",
        "context deadline exceeded",
        "dial tcp",
    ]) {
        Some(Code::REGISTRY_UNREACHABLE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message containerd gave on the local stack, by scenario, and the code it must
    /// read as.
    #[test]
    fn recorded_containerd_messages() {
        let recorded: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/runtime/containerd-1.6.20_ds1.json"
        ))
        .unwrap();
        let want = [
            ("wrong_password", Code::REGISTRY_UNAUTHORIZED),
            ("no_credentials", Code::REGISTRY_UNAUTHORIZED),
            ("missing_tag", Code::MANIFEST_NOT_FOUND),
            // containerd cannot tell a missing repository from a missing tag.
            ("missing_repository", Code::MANIFEST_NOT_FOUND),
            ("platform_absent", Code::PLATFORM_NOT_IN_INDEX),
            ("registry_refused", Code::REGISTRY_UNREACHABLE),
        ];
        let messages = recorded["messages"].as_object().unwrap();
        for (scenario, code) in want {
            let m = messages[scenario].as_str().unwrap();
            assert_eq!(runtime_message_code(m), Some(code), "{scenario}: {m}");
        }
        assert_eq!(
            messages.len(),
            want.len(),
            "a recorded scenario has no expected code here"
        );
    }

    /// CRI-O's wrappings of a containers/image error (cited in the module comment), as the
    /// kubelet's ErrImagePull message carries them.
    fn crio_wrapped(message: &str) -> Vec<String> {
        let grpc = "rpc error: code = Unknown desc = ";
        vec![
            message.to_string(),
            format!("{grpc}unable to pull image: {message}"),
            format!(
                "{grpc}unable to pull image or OCI artifact: pull image err: {message}; artifact err: {message}"
            ),
            format!("{grpc}RegistryUnavailable: unable to pull image: {message}"),
        ]
    }

    /// Every message containers/image gave on the local stack (skopeo 1.9.3, containers/image
    /// 5.23.1), by scenario, bare and in each of CRI-O's wrappings.
    #[test]
    fn recorded_containers_image_messages() {
        let recorded: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/runtime/skopeo-1.9.3.json"
        ))
        .unwrap();
        let want = [
            // The stack's docker-registry answers 401 for no and for wrong credentials alike.
            ("wrong_password", Code::REGISTRY_UNAUTHORIZED),
            ("no_credentials", Code::REGISTRY_UNAUTHORIZED),
            ("missing_tag", Code::MANIFEST_NOT_FOUND),
            // docker-registry says MANIFEST_UNKNOWN for a missing repository's manifest too.
            ("missing_repository", Code::MANIFEST_NOT_FOUND),
            ("platform_absent", Code::PLATFORM_NOT_IN_INDEX),
            ("registry_refused", Code::REGISTRY_UNREACHABLE),
        ];
        let messages = recorded["messages"].as_object().unwrap();
        for (scenario, code) in want {
            let m = messages[scenario].as_str().unwrap();
            for wrapped in crio_wrapped(m) {
                assert_eq!(
                    runtime_message_code(&wrapped),
                    Some(code),
                    "{scenario}: {wrapped}"
                );
            }
        }
        assert_eq!(
            messages.len(),
            want.len(),
            "a recorded scenario has no expected code here"
        );
        // What the agreement test saw from the fault registry (not a fixture scenario: the
        // digests change with every run).
        let corrupt = "writing blob: happened during read: Digest did not match, expected sha256:2b0bdd3e34b05bfad48e330054a2b09e41cbcb8c86d623f2a9b46d1f2cd61175, got sha256:706cb82ad69bd44aa51fd1002f8123a7ae11478eb1e3225fcb6b237179907d70";
        for wrapped in crio_wrapped(corrupt) {
            assert_eq!(
                runtime_message_code(&wrapped),
                Some(Code::BLOB_DIGEST_MISMATCH),
                "{wrapped}"
            );
        }
    }

    /// CRI-O's and older containerd's phrasing, from the reports cited in
    /// `shared/reference` (cri-o/cri-o#2614, #6457; kubernetes/kops#16762).
    #[test]
    fn cited_runtime_messages() {
        let cases = [
            (
                "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app: unauthorized: authentication required",
                Some(Code::REGISTRY_UNAUTHORIZED),
            ),
            (
                "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
                Some(Code::REGISTRY_UNAUTHORIZED),
            ),
            (
                "choosing image instance: no image found in manifest list for architecture amd64, variant \"\", OS linux",
                Some(Code::PLATFORM_NOT_IN_INDEX),
            ),
            (
                "reading manifest v9 in 818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app: manifest unknown",
                Some(Code::MANIFEST_NOT_FOUND),
            ),
            (
                "unexpected status from HEAD request to https://818140567777.dkr.ecr.us-east-1.amazonaws.com/v2/team/app/blobs/sha256:abc: 403 Forbidden",
                Some(Code::LAYER_DENIED),
            ),
            (
                "denied: Your authorization token has expired. Reauthenticate and try again.",
                Some(Code::REGISTRY_TOKEN_EXPIRED),
            ),
            ("Back-off pulling image", None),
        ];
        for (m, code) in cases {
            assert_eq!(runtime_message_code(m), code, "{m}");
        }
    }
}
