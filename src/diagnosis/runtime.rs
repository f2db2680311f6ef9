//! What the container runtime's pull error means, as one of our codes: the canary's kubelet
//! message (an `ErrImagePull` event, a container status) classified so that its findings are
//! comparable with the other paths'. Pure.
//!
//! The phrases are the runtimes' own: containerd 1.6's as recorded from the local stack
//! (`tests/fixtures/runtime/containerd-*.json`, by `tests/runtime.rs`), CRI-O's from the cited
//! bug reports (OpenShift has no local runtime here). A runtime sends a HEAD to the registry
//! and gets no body, so it often cannot say more than the status: containerd says `not found`
//! for a missing tag and a missing repository alike, and the same `401 Unauthorized` for a
//! wrong password and for none. The codes below say no more than the message does.

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
