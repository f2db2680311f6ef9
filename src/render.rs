//! Renderers: the report as JSON (the contract) or as text for a person. Both are pure.

use std::fmt::Write as _;

use crate::report::{Finding, Report, Severity, Stage, Status, Verdict, all_findings, wire_name};

pub fn json(report: &Report) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "✓",
        Status::Warn => "!",
        Status::Fail => "✗",
        Status::Skip => "-",
    }
}

fn stage_line(out: &mut String, s: &Stage) {
    let _ = write!(
        out,
        "  {} {:<19} {:>6} ms",
        mark(s.status),
        s.name,
        s.duration_ms
    );
    if let Some(b) = s.bytes {
        let _ = write!(out, "  {}", human_bytes(b));
    }
    if let Some(f) = s.findings.iter().max_by_key(|f| f.severity) {
        let _ = write!(out, "  {}", f.code.name());
    }
    out.push('\n');
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A finding for a person: what and why first, then the fix, evidence last.
fn finding(out: &mut String, f: &Finding) {
    let _ = writeln!(
        out,
        "[{}] {}: {}",
        wire_name(&f.severity),
        f.code.name(),
        f.summary
    );
    let _ = writeln!(out, "  cause: {}", f.code.spec().cause);
    let mut lines = f.remediation.lines();
    if let Some(first) = lines.next() {
        let _ = writeln!(out, "  fix:   {first}");
    }
    for l in lines {
        let _ = writeln!(out, "         {l}");
    }
    for (k, v) in &f.evidence {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "  {k}: {v}");
    }
}

/// The report for a person. Registry and AWS text reaches it verbatim, so terminal control
/// characters (ESC sequences that move the cursor, rewrite the title or hide lines) are
/// removed from the whole rendering; newlines and tabs stay.
pub fn text(report: &Report) -> String {
    strip_controls(&text_unsanitized(report))
}

/// Removes C0 controls but newline and tab, DEL, and C1 controls.
fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\n' || c == '\t' || !(c.is_control()))
        .collect()
}

fn text_unsanitized(report: &Report) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    };
    let _ = writeln!(
        out,
        "{} {}: {verdict} in {} ms",
        report.tool.name, report.tool.version, report.duration_ms
    );
    let id = &report.identity;
    let who = id
        .caller
        .as_ref()
        .map(|c| c.arn.clone())
        .or_else(|| id.role_arn.clone())
        .unwrap_or_else(|| "unknown".into());
    let mode = wire_name(&id.mode);
    let _ = writeln!(out, "\nidentity ({mode}): {who}");
    if let Some(sub) = id.token.as_ref().and_then(|t| t.subject.as_deref()) {
        let _ = writeln!(out, "  token subject: {sub}");
    }
    for s in &id.stages {
        stage_line(&mut out, s);
    }
    for img in &report.images {
        let _ = writeln!(out, "\n{} ({:?})", img.image, img.verdict);
        if let Some(m) = &img.manifest {
            let _ = writeln!(
                out,
                "  manifest {}{}",
                m.digest,
                m.platform
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            );
        }
        for s in &img.stages {
            stage_line(&mut out, s);
        }
        if let Some(p) = &img.paths.pull_secrets {
            let _ = writeln!(
                out,
                "  {} pull secrets ({}, entry {})",
                mark(p.status),
                p.source,
                p.entry.as_deref().unwrap_or("none")
            );
            for s in &p.stages {
                out.push_str("  ");
                stage_line(&mut out, s);
            }
        }
        if let Some(c) = &img.paths.kubelet_canary {
            let _ = writeln!(
                out,
                "  {} kubelet canary (pod {}, node {})",
                mark(c.status),
                c.pod,
                c.node.as_deref().unwrap_or("?")
            );
        }
    }
    let mut all: Vec<&Finding> = all_findings(report).collect();
    all.sort_by_key(|f| std::cmp::Reverse(f.severity));
    if !all.is_empty() {
        out.push_str("\nfindings:\n");
        for f in all {
            finding(&mut out, f);
        }
    }
    out
}

/// Kubernetes keeps at most 4096 bytes of a termination message.
pub const TERMINATION_LIMIT: usize = 4096;

/// A few lines for `/dev/termination-log`, so `kubectl get pod -o jsonpath=
/// '{..terminated.message}'` shows the verdict without logs: the verdict, then each failing
/// image with its first error code, cut to fit the limit.
pub fn termination_summary(report: &Report) -> String {
    let verdict = wire_name(&report.verdict);
    let mut out = format!(
        "ecr-pull-probe {verdict}: {} of {} images pullable\n",
        report
            .images
            .iter()
            .filter(|i| i.verdict == Verdict::Pass)
            .count(),
        report.images.len()
    );
    let identity_errors = report
        .identity
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .filter(|f| f.severity == Severity::Error);
    for f in identity_errors {
        out.push_str(&format!("identity: {}\n", f.code.name()));
    }
    for img in report.images.iter().filter(|i| i.verdict != Verdict::Pass) {
        let code = img
            .all_findings()
            .find(|f| f.severity == Severity::Error)
            .map_or("NOT_CHECKED", |f| f.code.name());
        out.push_str(&format!("{} {code}\n", img.image));
    }
    if out.len() > TERMINATION_LIMIT {
        let marker = "...\n";
        let mut cut = TERMINATION_LIMIT - marker.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(marker);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Code;
    use crate::identity::CredentialMode;
    use crate::report::*;

    fn sample() -> Report {
        let f = Finding::new(Code::MANIFEST_NOT_FOUND, "app:v9 not found")
            .with("reference", "v9")
            .fix("Push the image.\nOr fix the tag.");
        Report {
            schema_version: SCHEMA_VERSION.into(),
            tool: Tool {
                name: "ecr-pull-probe".into(),
                version: "0.1.0".into(),
            },
            started_at: "2026-11-28T00:00:00Z".into(),
            duration_ms: 12,
            verdict: Verdict::Fail,
            identity: IdentityReport {
                mode: CredentialMode::WebIdentity,
                role_arn: Some("arn:aws:iam::1:role/r".into()),
                token_file: None,
                token: None,
                caller: None,
                credentials_expire_at: None,
                stages: vec![Stage::from_findings("sts", 3, None, vec![])],
            },
            workload: None,
            images: vec![ImageReport {
                image: "x/app:v9".into(),
                verdict: Verdict::Fail,
                reference: ReferenceReport {
                    written: "x/app:v9".into(),
                    normalized: "x/app:v9".into(),
                    registry: "x".into(),
                    repository: "app".into(),
                    tag: Some("v9".into()),
                    digest: None,
                    ecr: None,
                    endpoint: "https://x/".into(),
                },
                ecr_token: None,
                manifest: None,
                blobs: vec![],
                stages: vec![Stage::from_findings("manifest", 5, Some(2048), vec![f])],
                paths: Paths {
                    pod_identity: Status::Fail,
                    pull_secrets: None,
                    kubelet_canary: None,
                },
                findings: vec![],
            }],
        }
    }

    #[test]
    fn text_puts_cause_and_fix_before_evidence() {
        let t = text(&sample());
        assert!(t.starts_with("ecr-pull-probe 0.1.0: FAIL"));
        assert!(t.contains("✓ sts"));
        assert!(
            t.contains("✗ manifest") && t.contains("2.0 KiB") && t.contains("MANIFEST_NOT_FOUND")
        );
        let (cause, fix, ev) = (
            t.find("  cause:").unwrap(),
            t.find("  fix:").unwrap(),
            t.find("  reference: v9").unwrap(),
        );
        assert!(cause < fix && fix < ev, "{t}");
        assert!(t.contains("         Or fix the tag."));
    }

    /// Issue 15: registry text with terminal control codes was printed raw.
    #[test]
    fn text_strips_terminal_control_codes_from_registry_text() {
        let mut r = sample();
        r.images[0].stages[0].findings[0].summary =
            "denied\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[1A\u{9b}31m".into();
        let t = text(&r);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("denied]0;pwned[2J[1A31m"), "{t}");
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn termination_summary_names_failures_and_fits_the_limit() {
        let t = termination_summary(&sample());
        assert_eq!(
            t,
            "ecr-pull-probe fail: 0 of 1 images pullable\nx/app:v9 MANIFEST_NOT_FOUND\n"
        );
        let mut big = sample();
        let img = big.images[0].clone();
        big.images = (0..500)
            .map(|i| ImageReport {
                image: format!("{}-{i}", img.image),
                ..img.clone()
            })
            .collect();
        let t = termination_summary(&big);
        assert!(
            t.len() <= TERMINATION_LIMIT && t.ends_with("...\n"),
            "{}",
            t.len()
        );
    }

    #[test]
    fn the_summary_names_a_failure_found_on_the_kubelets_path() {
        let mut r = sample();
        r.images[0].stages = vec![Stage::from_findings("manifest", 1, None, vec![])];
        r.images[0].paths.pull_secrets = Some(SecretPath {
            status: Status::Fail,
            source: "f".into(),
            entry: None,
            username: None,
            password_expires_at: None,
            stages: vec![],
            findings: vec![Finding::new(Code::PULL_SECRET_NO_MATCH, "none")],
        });
        assert!(termination_summary(&r).contains("x/app:v9 PULL_SECRET_NO_MATCH"));
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(200 << 20), "200.0 MiB");
    }
}
