//! The report for a person, in a terminal or a Job's log: the verdict and counts first, one
//! line per image (failed ones first) with its verdict on each path and the finding that
//! decides it, then the findings grouped by code, each cause and fix printed once.

use std::fmt::Write as _;

use super::{
    Group, Style, clean_report, columns, common_registry, deciding, evidence_lines, groups,
    headline, image_list, ordered, paths, severity_heading, short_name, verdict_word,
};
use crate::report::{Report, Severity, Status, Verdict, wire_name};

/// Past this many images, passing ones are counted, not listed: the JSON report has them all,
/// and a screen should still show every failure.
const LIST_PASSING_UP_TO: usize = 40;
/// Images named in a group of findings before "and N more".
const NAMES_PER_GROUP: usize = 5;
/// Distinct summaries shown per group of errors; one for warnings and infos.
const SUMMARIES_PER_ERROR: usize = 3;

#[derive(Clone, Copy)]
enum Color {
    Red,
    Green,
    Yellow,
    Dim,
    Bold,
}

fn paint(style: Style, color: Color, s: &str) -> String {
    if !style.color {
        return s.to_string();
    }
    let code = match color {
        Color::Red => "31;1",
        Color::Green => "32",
        Color::Yellow => "33",
        Color::Dim => "2",
        Color::Bold => "1",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Pass => Color::Green,
        Status::Warn => Color::Yellow,
        Status::Fail => Color::Red,
        Status::Skip => Color::Dim,
    }
}

fn verdict_color(v: Verdict) -> Color {
    match v {
        Verdict::Pass => Color::Green,
        Verdict::Fail | Verdict::Error => Color::Red,
        Verdict::Inconclusive => Color::Yellow,
        Verdict::NotChecked => Color::Dim,
    }
}

fn severity_color(s: Severity) -> Color {
    match s {
        Severity::Error => Color::Red,
        Severity::Warning => Color::Yellow,
        Severity::Info => Color::Dim,
    }
}

/// `s` padded to `width` columns, then painted (escape codes must not count as width).
fn cell(style: Style, color: Color, s: &str, width: usize) -> String {
    let pad = width.saturating_sub(s.chars().count());
    format!("{}{}", paint(style, color, s), " ".repeat(pad))
}

pub fn text(report: &Report, style: Style) -> String {
    let report = &clean_report(report);
    let mut out = String::new();
    if let Some(t) = &report.target {
        for line in super::target::lines(t) {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    let head = headline(report);
    let _ = writeln!(
        out,
        "{}",
        paint(style, verdict_color(report.verdict), &head)
    );
    cause_lines(&mut out, report);
    identity_lines(&mut out, report);
    images(&mut out, report, style);
    let gs = groups(report);
    let mut last = None;
    for g in &gs {
        if last != Some(g.severity) {
            let _ = writeln!(
                out,
                "\n{}",
                paint(
                    style,
                    severity_color(g.severity),
                    severity_heading(g.severity)
                )
            );
            last = Some(g.severity);
        }
        group(&mut out, report, g, style);
    }
    out
}

/// When every failed image is decided by one finding code, its first image's summary and fix
/// right under the verdict, the fix on one line (a policy statement's JSON folded): what a
/// person needs is then on the first screen, whatever follows (issue 29).
fn cause_lines(out: &mut String, report: &Report) {
    if report.verdict != Verdict::Fail {
        return;
    }
    let deciding: Vec<&crate::report::Finding> = ordered(report)
        .into_iter()
        .filter(|i| i.verdict == Verdict::Fail)
        .filter_map(|i| super::deciding(report, i))
        .collect();
    let Some(first) = deciding.first() else {
        return;
    };
    if deciding.iter().any(|f| f.code != first.code) {
        return;
    }
    let fold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = writeln!(
        out,
        "why: {} ({})",
        super::clean(&fold(&first.summary)),
        first.code.name()
    );
    let _ = writeln!(out, "fix: {}", super::clean(&fold(&first.remediation)));
}

fn identity_lines(out: &mut String, report: &Report) {
    let id = &report.identity;
    let who = id
        .caller
        .as_ref()
        .map(|c| c.arn.as_str())
        .or(id.role_arn.as_deref())
        .unwrap_or("unknown");
    let _ = write!(out, "identity: {who} ({})", wire_name(&id.mode));
    if let Some(sub) = id.token.as_ref().and_then(|t| t.subject.as_deref()) {
        let _ = write!(out, ", token subject {sub}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{} {}, {} in {} ms",
        report.tool.name,
        report.tool.version,
        super::images_count(report.images.len()),
        report.duration_ms
    );
}

fn images(out: &mut String, report: &Report, style: Style) {
    if report.images.is_empty() {
        return;
    }
    let common = common_registry(report);
    if let Some(c) = &common {
        let _ = writeln!(out, "registry: {}", c.trim_end_matches('/'));
    }
    let cols = columns(report);
    let list_all = report.images.len() <= LIST_PASSING_UP_TO;
    let shown: Vec<_> = ordered(report)
        .into_iter()
        .filter(|i| list_all || i.verdict != Verdict::Pass)
        .collect();
    let name_w = shown
        .iter()
        .map(|i| short_name(i, common.as_deref()).chars().count())
        .max()
        .unwrap_or(0)
        .max("IMAGE".len());
    let col_w: Vec<usize> = cols.iter().map(|c| c.len().max(4)).collect();
    // "NOT CHECKED" is wider than PASS/FAIL/ERROR; the column grows only when it is shown.
    let verdict_w = shown
        .iter()
        .map(|i| verdict_word(i.verdict).len() + 2)
        .max()
        .unwrap_or(0)
        .max(7);
    out.push('\n');
    let mut header = format!("{:<verdict_w$}{:<name_w$}", "", "IMAGE");
    for (c, w) in cols.iter().zip(&col_w) {
        let _ = write!(header, "  {:<w$}", c.to_uppercase());
    }
    header.push_str("  DECIDED BY");
    let _ = writeln!(out, "{}", paint(style, Color::Bold, &header));
    for img in &shown {
        let mut line = cell(
            style,
            verdict_color(img.verdict),
            verdict_word(img.verdict),
            verdict_w,
        );
        line.push_str(&cell(
            style,
            Color::Bold,
            short_name(img, common.as_deref()),
            name_w,
        ));
        let ps = paths(report, img);
        for (c, w) in cols.iter().zip(&col_w) {
            line.push_str("  ");
            match ps.iter().find(|p| p.label == *c) {
                Some(p) => line.push_str(&cell(style, status_color(p.status), p.word, *w)),
                None => line.push_str(&cell(style, Color::Dim, "-", *w)),
            }
        }
        if let Some(f) = deciding(report, img) {
            let _ = write!(line, "  {}", f.code.name());
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let hidden = report.images.len() - shown.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "{}",
            paint(
                style,
                Color::Dim,
                &format!(
                    "{hidden} more images PASS on every path checked (--output json lists them)"
                )
            )
        );
    }
}

/// A field that should be one line, with any line break shown rather than taken: a
/// registry's message must not start a line that looks like the probe's own.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n")
}

fn group(out: &mut String, report: &Report, g: &Group<'_>, style: Style) {
    let spec = g.code.spec();
    let names = g.images();
    let applies = match (g.on_identity(), names.len()) {
        (true, 0) => "identity".to_string(),
        (true, _) => format!(
            "identity, {}",
            image_list(&names, report.images.len(), NAMES_PER_GROUP)
        ),
        (false, n) => super::images_count(n),
    };
    if super::brief(g.code) {
        let _ = writeln!(
            out,
            "  {}: {} ({applies}); see {}",
            paint(style, severity_color(g.severity), g.code.name()),
            spec.title,
            super::doc_link(g.code)
        );
        return;
    }
    let _ = writeln!(
        out,
        "  {}: {} ({applies})",
        paint(style, severity_color(g.severity), g.code.name()),
        spec.title
    );
    let summaries = g.distinct(|f| f.summary.as_str());
    let shown = if g.severity == Severity::Error {
        SUMMARIES_PER_ERROR
    } else {
        1
    };
    for (summary, on) in summaries.iter().take(shown) {
        let _ = writeln!(
            out,
            "    {}: {}",
            image_list(on, report.images.len(), NAMES_PER_GROUP),
            one_line(summary)
        );
    }
    if summaries.len() > shown {
        let _ = writeln!(out, "    ... {} more alike", summaries.len() - shown);
    }
    let _ = writeln!(out, "    cause: {}", spec.cause);
    let fixes = g.distinct(|f| f.remediation.as_str());
    for (fix, on) in &fixes {
        let label = if fixes.len() > 1 {
            format!("fix for {}", image_list(on, report.images.len(), 3))
        } else {
            "fix".to_string()
        };
        let mut lines = fix.lines();
        if let Some(first) = lines.next() {
            let _ = writeln!(out, "    {label}: {first}");
        }
        for l in lines {
            let _ = writeln!(out, "      {l}");
        }
    }
    // Evidence tells errors apart (hosts, AWS codes, request ids); one instance's is enough to
    // start from, the JSON report has every one.
    if g.severity == Severity::Error
        && let Some(first) = g.instances.first()
    {
        let ev = evidence_lines(first.finding);
        if !ev.is_empty() {
            let line = ev
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(
                out,
                "    evidence ({}): {}",
                first.image.unwrap_or("identity"),
                one_line(&line)
            );
        }
    }
}
