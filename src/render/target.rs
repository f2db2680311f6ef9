//! `diagnose`'s target as lines for people, shared by the text and Markdown views: what the
//! kubelet said (its own message first, the fact the incident began with), its events, then
//! where the probe ran and whose report stands for the node.

use crate::report::TargetReport;

/// The lines, plain; each view escapes and decorates its own.
pub(crate) fn lines(t: &TargetReport) -> Vec<String> {
    let mut out = vec![];
    let node = t.node.as_deref().unwrap_or("its node");
    let mut said = false;
    for c in &t.containers {
        if let (Some(reason), Some(message)) = (&c.reason, &c.message)
            && t.findings.iter().any(|f| {
                f.evidence.get("container").and_then(|v| v.as_str()) == Some(c.container.as_str())
            })
        {
            out.push(format!(
                "kubelet on {node}: {reason} for {}/{} ({}): {message}",
                t.pod.as_deref().unwrap_or("?"),
                c.container,
                c.image
            ));
            said = true;
        }
    }
    for e in &t.events {
        let when = e.time.as_deref().unwrap_or("?");
        let count = e.count.map(|n| format!(" x{n}")).unwrap_or_default();
        let line = format!(
            "{}{count} on {} at {when}: {}",
            e.reason,
            e.node.as_deref().unwrap_or(node),
            e.message
        );
        if said {
            out.push(format!("  {line}"));
        } else {
            out.push(format!("kubelet event {line}"));
            said = true;
        }
    }
    match &t.pod {
        None => out.push(format!(
            "{} in {} has no pod: the probe ran on its pod template",
            t.target, t.namespace
        )),
        Some(_) if !said => out.push(format!(
            "kubelet on {node}: no pull error reported for {}",
            t.target
        )),
        Some(_) => {}
    }
    if let Some(j) = &t.job {
        out.push(format!(
            "probe Job {} ran on {} (exit {}); node report: {}",
            j.name,
            j.node.as_deref().unwrap_or("?"),
            j.exit_code,
            t.node_report.as_deref().unwrap_or("none")
        ));
    }
    out
}
