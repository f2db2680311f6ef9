//! The report as JUnit XML (the Surefire shape Jenkins, GitLab and Azure Pipelines read): one
//! test case per image and path, class `ecr-pull-probe.<path>`, plus one for the identity. A
//! failed path carries its deciding finding's code, summary, cause and fix; a finding that
//! says the probe was misconfigured is an `<error>` rather than a `<failure>`.

use std::fmt::Write as _;

use super::{clean_report, evidence_lines, paths};
use crate::report::{Finding, Report, Severity, Stage, Status};

/// Escapes text for XML content and attribute values. Control characters were made visible
/// by [`clean_report`]; newlines and tabs stay, as character references in attributes, where
/// a parser would otherwise fold them to spaces.
pub(crate) fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            // Not allowed in XML 1.0 at all; `clean` already escaped them, this is a backstop.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit's `timestamp` is the Ant form, ISO 8601 in UTC to the second without a zone
/// designator (`2026-11-28T09:15:36`); some readers refuse the `Z` and the nanoseconds the
/// report's RFC 3339 time carries. The report's times are UTC, so only the tail goes.
pub(super) fn ant_timestamp(rfc3339: &str) -> String {
    rfc3339
        .split(['.', 'Z', '+'])
        .next()
        .unwrap_or(rfc3339)
        .to_string()
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

struct Case {
    class: String,
    name: String,
    time_ms: u64,
    outcome: Outcome,
    /// Warnings and infos on a passing case, for the CI's "output" pane.
    notes: Vec<String>,
}

enum Outcome {
    Pass,
    Skipped(String),
    /// `error` for a misconfigured probe, `failure` for a pull that does not work.
    Failed {
        error: bool,
        kind: String,
        message: String,
        body: String,
    },
}

fn body(f: &Finding) -> String {
    let spec = f.code.spec();
    let mut s = format!(
        "{}: {}\n\ncause: {}\n\nfix: {}\n",
        f.code.name(),
        f.summary,
        spec.cause,
        f.remediation
    );
    let ev = evidence_lines(f);
    if !ev.is_empty() {
        s.push_str("\nevidence:\n");
        for (k, v) in ev {
            let _ = writeln!(s, "  {k}: {v}");
        }
    }
    s
}

fn outcome(status: Status, deciding: Option<&Finding>) -> Outcome {
    match (status, deciding) {
        (Status::Fail, Some(f)) => Outcome::Failed {
            error: f.code.spec().configuration_error,
            kind: f.code.name().to_string(),
            message: f.summary.clone(),
            body: body(f),
        },
        (Status::Fail, None) => Outcome::Failed {
            error: false,
            kind: "NOT_CHECKED".into(),
            message: "not checked: an earlier stage failed".into(),
            body: String::new(),
        },
        (Status::Skip, f) => Outcome::Skipped(
            f.map(|f| format!("not checked: {}: {}", f.code.name(), f.summary))
                .unwrap_or_else(|| "not checked".into()),
        ),
        _ => Outcome::Pass,
    }
}

fn notes<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<String> {
    findings
        .filter(|f| f.severity < Severity::Error)
        .map(|f| {
            format!(
                "[{}] {}: {}",
                crate::report::wire_name(&f.severity),
                f.code.name(),
                f.summary
            )
        })
        .collect()
}

fn duration(stages: &[Stage]) -> u64 {
    stages.iter().map(|s| s.duration_ms).sum()
}

fn cases(report: &Report) -> Vec<Case> {
    let id = &report.identity;
    let id_status = if id.stages.iter().any(|s| s.status == Status::Fail) {
        Status::Fail
    } else {
        Status::Pass
    };
    let id_deciding = id
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .find(|f| f.severity == Severity::Error);
    let mut out = vec![Case {
        class: "ecr-pull-probe.identity".into(),
        name: id
            .caller
            .as_ref()
            .map(|c| c.arn.clone())
            .or_else(|| id.role_arn.clone())
            .unwrap_or_else(|| "identity".into()),
        time_ms: duration(&id.stages),
        outcome: outcome(id_status, id_deciding),
        notes: notes(id.stages.iter().flat_map(|s| &s.findings)),
    }];
    for img in &report.images {
        for p in paths(report, img) {
            let (time_ms, path_notes) = match p.key {
                "pod_identity" => (
                    duration(&img.stages),
                    notes(
                        img.stages
                            .iter()
                            .flat_map(|s| &s.findings)
                            .chain(&img.findings),
                    ),
                ),
                "pull_secrets" => img
                    .paths
                    .pull_secrets
                    .as_ref()
                    .map(|s| {
                        (
                            duration(&s.stages),
                            notes(s.stages.iter().flat_map(|s| &s.findings).chain(&s.findings)),
                        )
                    })
                    .unwrap_or_default(),
                "node_credential_provider" => img
                    .paths
                    .node_credential_provider
                    .as_ref()
                    .map(|n| {
                        (
                            duration(&n.stages),
                            notes(n.stages.iter().flat_map(|s| &s.findings).chain(&n.findings)),
                        )
                    })
                    .unwrap_or_default(),
                _ => (0, notes(p.deciding.into_iter())),
            };
            out.push(Case {
                class: format!("ecr-pull-probe.{}", p.key),
                name: img.image.clone(),
                time_ms,
                outcome: outcome(p.status, p.deciding),
                notes: path_notes,
            });
        }
    }
    out
}

pub fn junit(report: &Report) -> String {
    let report = &clean_report(report);
    let cases = cases(report);
    let count = |pred: fn(&Outcome) -> bool| cases.iter().filter(|c| pred(&c.outcome)).count();
    let failures = count(|o| matches!(o, Outcome::Failed { error: false, .. }));
    let errors = count(|o| matches!(o, Outcome::Failed { error: true, .. }));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    let time = seconds(report.duration_ms);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ecr-pull-probe\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"ecr-pull-probe\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{}\">",
        cases.len(),
        escape(&ant_timestamp(&report.started_at), true)
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"verdict\" value=\"{}\"/>\n      <property name=\"version\" value=\"{}\"/>\n    </properties>",
        crate::report::wire_name(&report.verdict),
        escape(&report.tool.version, true)
    );
    for c in &cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            escape(&c.class, true),
            escape(&c.name, true),
            seconds(c.time_ms)
        );
        if matches!(c.outcome, Outcome::Pass) && c.notes.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        match &c.outcome {
            Outcome::Pass => {}
            Outcome::Skipped(m) => {
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(m, true));
            }
            Outcome::Failed {
                error,
                kind,
                message,
                body,
            } => {
                let tag = if *error { "error" } else { "failure" };
                let _ = writeln!(
                    out,
                    "      <{tag} type=\"{}\" message=\"{}\">{}</{tag}>",
                    escape(kind, true),
                    escape(message, true),
                    escape(body, false)
                );
            }
        }
        if !c.notes.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&c.notes.join("\n"), false)
            );
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
