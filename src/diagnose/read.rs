//! What `diagnose` reads of the target pod, turned into the report's terms: each container's
//! pull state and the kubelet's `Failed`/`BackOff` events, with the kubelet's messages as
//! findings. Pure: the API objects come in, report data goes out.

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

use crate::diagnosis;
use crate::paths::canary;
use crate::report::{Finding, KubeletPull, PullEvent, TargetReport};

/// Event reasons the kubelet gives a pull that failed (`Failed`, with the runtime's message)
/// and the back-off after it (`BackOff`), as `kubectl describe pod` shows them.
const PULL_EVENTS: &[&str] = &["Failed", "BackOff"];

/// Whether any container of the pod is stuck on a pull error.
pub fn pull_failing(pod: &Pod) -> bool {
    statuses(pod).any(|(_, s)| matches!(canary::judge(s), Some(canary::Pull::Failed { .. })))
}

fn statuses(pod: &Pod) -> impl Iterator<Item = (bool, &ContainerStatus)> {
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (true, s));
    let app = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (false, s));
    init.chain(app)
}

/// The pod's node, as scheduled.
pub fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// The target as read: `pod` is `None` when no pod of the workload exists.
pub fn target_report(
    target: &str,
    namespace: &str,
    pod: Option<&Pod>,
    events: &[Event],
) -> TargetReport {
    let report = TargetReport {
        target: target.to_string(),
        namespace: namespace.to_string(),
        pod: None,
        node: None,
        containers: vec![],
        events: vec![],
        job: None,
        node_report: None,
        findings: vec![],
    };
    let Some(pod) = pod else {
        return report;
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let node = node_of(pod);
    let (containers, findings) = containers(pod, &pod_name, node.as_deref());
    let events = pull_events(events, node.as_deref());
    let findings = event_findings(findings, &events, &pod_name);
    TargetReport {
        pod: Some(pod_name),
        node,
        containers,
        events: events.into_iter().map(|(_, e)| e).collect(),
        findings,
        ..report
    }
}

/// Each container's pull state, and a finding for each one the kubelet failed to pull.
fn containers(pod: &Pod, pod_name: &str, node: Option<&str>) -> (Vec<KubeletPull>, Vec<Finding>) {
    let mut pulls = vec![];
    let mut findings = vec![];
    for (init, s) in statuses(pod) {
        let waiting = s.state.as_ref().and_then(|st| st.waiting.as_ref());
        let reason = waiting.and_then(|w| w.reason.clone());
        let message = waiting.and_then(|w| w.message.clone());
        if let Some(canary::Pull::Failed { reason, message }) = canary::judge(s) {
            findings.push(diagnosis::kubelet_pull_failed(
                pod_name, node, &s.name, &s.image, &reason, &message,
            ));
        }
        pulls.push(KubeletPull {
            container: s.name.clone(),
            image: s.image.clone(),
            init,
            image_pull_policy: pull_policy(pod, &s.name, init),
            reason,
            message,
        });
    }
    (pulls, findings)
}

/// The `imagePullPolicy` of the named container (or init container) in the pod's spec.
fn pull_policy(pod: &Pod, name: &str, init: bool) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let list = if init {
        spec.init_containers.as_deref().unwrap_or_default()
    } else {
        spec.containers.as_slice()
    };
    list.iter()
        .find(|c| c.name == name)
        .and_then(|c| c.image_pull_policy.clone())
}

/// The kubelet's pull events, oldest first, each with the event it was read from; the node
/// is the event's source, else the pod's.
fn pull_events<'a>(events: &'a [Event], node: Option<&str>) -> Vec<(&'a Event, PullEvent)> {
    let mut events: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.reason
                .as_deref()
                .is_some_and(|r| PULL_EVENTS.contains(&r))
        })
        .collect();
    events.sort_by_key(|e| event_time(e));
    events
        .into_iter()
        .map(|e| {
            let node = e
                .source
                .as_ref()
                .and_then(|s| s.host.clone())
                .or_else(|| e.reporting_instance.clone())
                .or_else(|| node.map(str::to_string));
            let pull = PullEvent {
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                node,
                time: event_time(e),
                count: e.count,
            };
            (e, pull)
        })
        .collect()
}

/// `findings` (the containers'), and one more for each `Failed` event whose text none of them
/// holds. A back-off's message only repeats the image's name; `Failed` carries the runtime's
/// words. Both stand in the report; only a `Failed` whose text no status holds any more (the
/// status now says `ImagePullBackOff`) adds a finding.
fn event_findings(
    mut findings: Vec<Finding>,
    events: &[(&Event, PullEvent)],
    pod_name: &str,
) -> Vec<Finding> {
    for (e, pull) in events {
        let message = &pull.message;
        let known = findings.iter().any(|f| {
            f.evidence
                .get("kubelet_message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| message.contains(m) || m.contains(message.as_str()))
        });
        if pull.reason == "Failed" && !known && diagnosis::runtime_message_code(message).is_some() {
            findings.push(diagnosis::kubelet_pull_failed(
                pod_name,
                pull.node.as_deref(),
                e.involved_object.field_path.as_deref().unwrap_or("?"),
                "",
                &pull.reason,
                message,
            ));
        }
    }
    findings
}

/// The last time the event was seen, RFC 3339, from whichever field the cluster filled.
fn event_time(e: &Event) -> Option<String> {
    use k8s_openapi::jiff::Timestamp;
    let t: Option<Timestamp> = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0));
    t.map(|t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Code;

    const CRIO_401: &str = "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required";

    /// The incident's pod as the API returns it (trimmed), and its events.
    fn incident() -> (Pod, Vec<Event>) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "naming-server-new-6f8fdc8875-gc6ch", "namespace": "cf-dev"},
            "spec": {"nodeName": "ip-10-0-1-23.ec2.internal", "serviceAccountName": "naming-server",
                     "containers": [{"name": "app", "image": "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest", "imagePullPolicy": "Always"}]},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "app", "image": "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest\""}}}]}
        }))
        .unwrap();
        let event = |reason: &str, message: &str, at: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("naming-server-new-6f8fdc8875-gc6ch.{reason}")},
                "involvedObject": {"kind": "Pod", "name": "naming-server-new-6f8fdc8875-gc6ch", "fieldPath": "spec.containers{app}"},
                "reason": reason, "message": message, "type": "Warning", "count": 4,
                "source": {"component": "kubelet", "host": "ip-10-0-1-23.ec2.internal"},
                "lastTimestamp": at,
            }))
            .unwrap()
        };
        let events = vec![
            event(
                "BackOff",
                "Back-off pulling image \"x\"",
                "2026-11-20T10:02:00Z",
            ),
            event(
                "Failed",
                &format!("Failed to pull image \"x\": {CRIO_401}"),
                "2026-11-20T10:01:00Z",
            ),
            event("Scheduled", "Successfully assigned", "2026-11-20T10:00:00Z"),
        ];
        (pod, events)
    }

    #[test]
    fn the_kubelets_own_words_and_node_come_first() {
        let (pod, events) = incident();
        assert!(pull_failing(&pod));
        let t = target_report(
            "pod/naming-server-new-6f8fdc8875-gc6ch",
            "cf-dev",
            Some(&pod),
            &events,
        );
        assert_eq!(t.node.as_deref(), Some("ip-10-0-1-23.ec2.internal"));
        assert_eq!(t.containers[0].reason.as_deref(), Some("ImagePullBackOff"));
        assert_eq!(t.containers[0].image_pull_policy.as_deref(), Some("Always"));
        // Oldest first, and only the pull's events.
        let reasons: Vec<&str> = t.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["Failed", "BackOff"]);
        assert_eq!(
            t.events[0].node.as_deref(),
            Some("ip-10-0-1-23.ec2.internal")
        );
        assert_eq!(t.events[0].time.as_deref(), Some("2026-11-20T10:01:00Z"));
        // The status says only "back-off"; the event holds the registry's answer.
        let codes: Vec<Code> = t.findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [Code::KUBELET_PULL_FAILED, Code::REGISTRY_UNAUTHORIZED]
        );
        assert!(
            t.findings[1].evidence["kubelet_message"]
                .as_str()
                .unwrap()
                .ends_with("unauthorized: authentication required")
        );
    }

    #[test]
    fn a_workload_without_a_pod_has_nothing_to_read() {
        let t = target_report("deployment/x", "ns", None, &[]);
        assert!(t.pod.is_none() && t.containers.is_empty() && t.findings.is_empty());
    }
}
