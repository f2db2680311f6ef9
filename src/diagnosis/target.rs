//! Findings of `diagnose` about its target: the kubelet's own pull error, read from the pod,
//! and the node report it could not read. Pure, like the rest of the diagnosis.

use super::{Code, runtime_message_code};
use crate::report::Finding;

/// The kubelet's pull error for one container of the target pod, coded by what its message
/// stands for ([`runtime_message_code`], the canary's mapping), `KUBELET_PULL_FAILED` when
/// it says too little. The message is kept verbatim: it is the evidence the incident lacked.
pub fn kubelet_pull_failed(
    pod: &str,
    node: Option<&str>,
    container: &str,
    image: &str,
    reason: &str,
    message: &str,
) -> Finding {
    let code = runtime_message_code(message);
    let mut f = Finding::new(
        code.unwrap_or(Code::KUBELET_PULL_FAILED),
        format!(
            "the kubelet on {} failed to pull {image} for {pod}/{container}: {reason}: {message}",
            node.unwrap_or("the pod's node")
        ),
    )
    .with("pod", pod.to_string())
    .with_opt("node", node.map(str::to_string))
    .with("container", container.to_string())
    .with("image", image.to_string())
    .with("reason", reason.to_string())
    .with("kubelet_message", message.to_string())
    .with("path", "kubelet");
    if code.is_some() {
        f = f.fix(format!(
            "{} This is the kubelet's own pull, so the credentials were the node's (its credential provider) or the pod's pull secrets, not the pod's role.",
            Code::KUBELET_PULL_FAILED.spec().remediation
        ));
    }
    f
}

/// Why the node's own report is not beside the pod's paths.
pub fn node_report_unavailable(node: &str, reason: &str) -> Finding {
    Finding::new(
        Code::NODE_REPORT_UNAVAILABLE,
        format!("no report of node {node}'s own credentials: {reason}"),
    )
    .with("node", node.to_string())
    .with("reason", reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The incident's message (CRI-O, cri-o/cri-o#2614), containerd's recorded one, and one
    /// that says nothing of the registry's answer.
    #[test]
    fn the_kubelets_message_decides_the_code() {
        let cases = [
            (
                "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required",
                Code::REGISTRY_UNAUTHORIZED,
            ),
            (
                "failed to pull and unpack image \"x:latest\": failed to resolve reference \"x:latest\": x:latest: not found",
                Code::MANIFEST_NOT_FOUND,
            ),
            (
                "Back-off pulling image \"x:latest\"",
                Code::KUBELET_PULL_FAILED,
            ),
        ];
        for (message, code) in cases {
            let f = kubelet_pull_failed("p", Some("worker-a"), "app", "x", "ErrImagePull", message);
            assert_eq!(f.code, code, "{message}");
            assert_eq!(f.evidence["kubelet_message"], message);
            assert_eq!(f.evidence["node"], "worker-a");
            assert!(f.summary.contains("worker-a"), "{}", f.summary);
        }
    }
}
