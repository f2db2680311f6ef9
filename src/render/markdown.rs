//! The report as Markdown for a CI job summary (GitHub Actions' `$GITHUB_STEP_SUMMARY`,
//! GitLab's and others' Markdown panes): the verdict, a table of images by path, and the
//! findings grouped by code. GitHub-flavoured tables; everything else plain CommonMark.

use std::fmt::Write as _;

use super::{
    Group, clean_report, columns, common_registry, deciding, evidence_lines, groups, headline,
    image_list, ordered, paths, severity_heading, short_name,
};
use crate::report::{Finding, Report, Severity, Status, Verdict, wire_name};

/// Images named in a group before "and N more"; the table above lists every one.
const NAMES_PER_GROUP: usize = 10;
const SUMMARIES_PER_GROUP: usize = 5;

/// Backslash-escapes every character Markdown could read as inline syntax (emphasis, code,
/// links, HTML, entities, table cells), so untrusted text stays text; line breaks become
/// spaces (a table row is one line). Text put through this never starts a line, so block
/// markers (`#`, `-`, `1.`) need no escape.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence is longer than any backtick run in `s`, so `s` cannot
/// close it early.
fn fenced(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}\n", s.trim_end_matches('\n'))
}

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Warn => "⚠️",
        Status::Fail => "❌",
        Status::Skip => "➖",
    }
}

fn verdict_mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅",
        Verdict::Fail | Verdict::Error => "❌",
        Verdict::Inconclusive => "❔",
        Verdict::NotChecked => "➖",
    }
}

fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Error => "❌",
        Severity::Warning => "⚠️",
        Severity::Info => "ℹ️",
    }
}

fn finding_cell(f: Option<&Finding>) -> String {
    f.map(|f| format!("`{}` {}", f.code.name(), escape(&f.summary)))
        .unwrap_or_default()
}

pub fn markdown(report: &Report) -> String {
    let report = &clean_report(report);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} {}\n",
        verdict_mark(report.verdict),
        escape(&headline(report))
    );
    if let Some(t) = &report.target {
        for line in super::target::lines(t) {
            let _ = writeln!(out, "> {}  ", escape(line.trim_start()));
        }
        out.push('\n');
    }
    let id = &report.identity;
    let who = id
        .caller
        .as_ref()
        .map(|c| c.arn.as_str())
        .or(id.role_arn.as_deref())
        .unwrap_or("unknown");
    let common = common_registry(report);
    let _ = write!(
        out,
        "Identity {} ({}); {} {}, {} in {} ms",
        escape(who),
        wire_name(&id.mode),
        report.tool.name,
        escape(&report.tool.version),
        super::images_count(report.images.len()),
        report.duration_ms
    );
    if let Some(c) = &common {
        let _ = write!(out, "; registry {}", escape(c.trim_end_matches('/')));
    }
    out.push_str(".\n\n");
    table(&mut out, report, common.as_deref());
    let gs = groups(report);
    let mut last = None;
    for g in &gs {
        if last != Some(g.severity) {
            let heading = severity_heading(g.severity);
            let mut h = heading.chars();
            let cap: String = h
                .next()
                .map(|c| c.to_uppercase().chain(h).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "#### {cap}\n");
            last = Some(g.severity);
        }
        group(&mut out, report, g);
    }
    out
}

fn table(out: &mut String, report: &Report, common: Option<&str>) {
    if report.images.is_empty() {
        return;
    }
    let cols = columns(report);
    out.push_str("| Verdict | Image |");
    for c in &cols {
        let mut ch = c.chars();
        let cap: String = ch
            .next()
            .map(|f| f.to_uppercase().chain(ch).collect())
            .unwrap_or_default();
        let _ = write!(out, " {cap} |");
    }
    out.push_str(" Decided by |\n|---|---|");
    for _ in &cols {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for img in ordered(report) {
        let _ = write!(
            out,
            "| {} {} | {} |",
            verdict_mark(img.verdict),
            super::verdict_word(img.verdict),
            escape(short_name(img, common))
        );
        let ps = paths(report, img);
        for c in &cols {
            match ps.iter().find(|p| p.label == *c) {
                Some(p) => {
                    let _ = write!(out, " {} {} |", mark(p.status), p.word);
                }
                None => out.push_str(" - |"),
            }
        }
        let _ = writeln!(out, " {} |", finding_cell(deciding(report, img)));
    }
    out.push('\n');
}

fn group(out: &mut String, report: &Report, g: &Group<'_>) {
    let spec = g.code.spec();
    let total = report.images.len();
    let names = g.images();
    let mut on: Vec<String> = Vec::new();
    if g.on_identity() {
        on.push("identity".into());
    }
    if !names.is_empty() {
        on.push(escape(&image_list(&names, total, NAMES_PER_GROUP)));
    }
    if super::brief(g.code) {
        let _ = writeln!(
            out,
            "**{} `{}`** {} — {} ([why]({}))\n",
            severity_mark(g.severity),
            g.code.name(),
            spec.title,
            on.join(", "),
            super::doc_link(g.code)
        );
        return;
    }
    let _ = writeln!(
        out,
        "**{} `{}`** {} — {}\n",
        severity_mark(g.severity),
        g.code.name(),
        spec.title,
        on.join(", ")
    );
    let summaries = g.distinct(|f| f.summary.as_str());
    for (summary, on) in summaries.iter().take(SUMMARIES_PER_GROUP) {
        let _ = writeln!(
            out,
            "- {}: {}",
            escape(&image_list(on, total, NAMES_PER_GROUP)),
            escape(summary)
        );
    }
    if summaries.len() > SUMMARIES_PER_GROUP {
        let _ = writeln!(
            out,
            "- … {} more alike",
            summaries.len() - SUMMARIES_PER_GROUP
        );
    }
    let _ = writeln!(out, "\n**Cause.** {}\n", spec.cause);
    let fixes = g.distinct(|f| f.remediation.as_str());
    for (fix, on) in &fixes {
        let label = if fixes.len() > 1 {
            format!("**Fix for {}.**", escape(&image_list(on, total, 3)))
        } else {
            "**Fix.**".to_string()
        };
        // The catalogue's own text is ours and written as Markdown; a fix built from what a
        // registry or AWS said is shown verbatim in a code block.
        if *fix == spec.remediation {
            let _ = writeln!(out, "{label} {fix}\n");
        } else {
            let _ = writeln!(out, "{label}\n\n{}", fenced(fix));
        }
    }
    if g.severity == Severity::Error
        && let Some(first) = g.instances.first()
    {
        let ev = evidence_lines(first.finding);
        if !ev.is_empty() {
            let body = ev
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n");
            let _ = writeln!(
                out,
                "Evidence ({}):\n\n{}",
                escape(first.image.unwrap_or("identity")),
                fenced(&body)
            );
        }
    }
}
