//! Renderers, all pure (a report in, a string out): JSON (the contract), text for a person in
//! a terminal or a Job's log, Markdown for a CI job summary, JUnit XML for a CI's test view.
//!
//! The three views for people share one reading of the report, kept here: which paths an image
//! was checked on, the finding that decides each, and the findings grouped by code. Registry
//! and AWS text is untrusted: [`clean_report`] makes control characters visible before any
//! renderer for people sees it, and each format escapes its own syntax on top.

mod junit;
mod markdown;
pub mod saved;
mod target;
mod text;

use std::collections::BTreeMap;

pub use junit::junit;
pub use markdown::markdown;
pub use text::text;

use crate::diagnosis::Code;
use crate::report::{
    Finding, ImageReport, KubeletStatus, Report, Require, Severity, Status, Verdict, wire_name,
};

pub fn json(report: &Report) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// How text is drawn: colour only on a terminal that did not ask for none (`NO_COLOR`); the
/// caller decides, so the renderer stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

/// Replaces control characters (C0 but newline and tab, DEL, C1, and the bidirectional
/// overrides that reorder what a reader sees) with a visible `\x1b`-style escape, so text a
/// registry or AWS sent cannot move the cursor, recolour a terminal or forge lines in a log.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n' && c != '\t') || bidi {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn clean_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = clean(s),
        Value::Array(a) => a.iter_mut().for_each(clean_value),
        Value::Object(o) => {
            let taken = std::mem::take(o);
            for (k, mut v) in taken {
                clean_value(&mut v);
                o.insert(clean(&k), v);
            }
        }
        _ => {}
    }
}

/// The report with every string [`clean`]ed: the text, Markdown and JUnit renderers work on
/// this copy, so no field (today's or a future one) reaches a reader raw.
pub fn clean_report(report: &Report) -> Report {
    let Ok(mut v) = serde_json::to_value(report) else {
        return report.clone();
    };
    clean_value(&mut v);
    // The report round-trips (a test checks) and cleaning touches no enum's spelling.
    serde_json::from_value(v).unwrap_or_else(|_| report.clone())
}

/// One way an image was pulled, as the views show it.
#[derive(Debug, Clone)]
pub(crate) struct PathView<'a> {
    /// Column heading for people.
    pub label: &'static str,
    /// The report's key, for machine-facing names (JUnit class names).
    pub key: &'static str,
    pub status: Status,
    /// How the status reads (`UNKNOWN` for a kubelet whose answer the run cannot know).
    pub word: &'static str,
    /// The most severe finding on this path (the first of equals).
    pub deciding: Option<&'a Finding>,
}

fn most_severe<'a>(findings: impl Iterator<Item = &'a Finding>) -> Option<&'a Finding> {
    findings.fold(None, |best: Option<&Finding>, f| match best {
        Some(b) if b.severity >= f.severity => Some(b),
        _ => Some(f),
    })
}

/// The error that stopped the identity, if any: it decides every pod-identity path.
fn identity_error(report: &Report) -> Option<&Finding> {
    report
        .identity
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .find(|f| f.severity == Severity::Error)
}

/// The paths this image was checked on, in a fixed order. A new path is one line here.
pub(crate) fn paths<'a>(report: &'a Report, img: &'a ImageReport) -> Vec<PathView<'a>> {
    let p = &img.paths;
    let pod = most_severe(img.stages.iter().flat_map(|s| &s.findings))
        .filter(|f| f.severity == Severity::Error || p.pod_identity.status != Status::Fail)
        .or_else(|| identity_error(report))
        .or_else(|| most_severe(img.stages.iter().flat_map(|s| &s.findings)));
    let mut out = vec![PathView {
        label: "pod identity",
        key: "pod_identity",
        status: p.pod_identity.status,
        word: status_word(p.pod_identity.status),
        deciding: pod,
    }];
    out.extend(p.pull_secrets.as_ref().map(|s| PathView {
        label: "pull secrets",
        key: "pull_secrets",
        status: s.status,
        word: status_word(s.status),
        deciding: most_severe(s.stages.iter().flat_map(|s| &s.findings).chain(&s.findings)),
    }));
    out.extend(p.node_docker_config.as_ref().map(|s| PathView {
        label: "node docker config",
        key: "node_docker_config",
        status: s.status,
        word: status_word(s.status),
        deciding: most_severe(s.stages.iter().flat_map(|s| &s.findings).chain(&s.findings)),
    }));
    out.extend(p.node_credential_provider.as_ref().map(|n| PathView {
        label: "node provider",
        key: "node_credential_provider",
        status: n.status,
        word: status_word(n.status),
        deciding: most_severe(n.stages.iter().flat_map(|s| &s.findings).chain(&n.findings)),
    }));
    out.extend(p.kubelet_canary.as_ref().map(|c| PathView {
        label: "canary",
        key: "kubelet_canary",
        status: c.status,
        word: status_word(c.status),
        deciding: most_severe(c.findings.iter()),
    }));
    // The kubelet's answer over all of them: what it does with its list. A failure is
    // decided by its own finding (no credentials at all) or else by the last source that
    // failed: the credentials it tried last.
    let last_failed = out
        .iter()
        .skip(1)
        .rev()
        .find(|v| v.status == Status::Fail)
        .and_then(|v| v.deciding);
    out.extend(p.kubelet.as_ref().map(|k| {
        let (status, word) = match k.status {
            KubeletStatus::Pass => (Status::Pass, "PASS"),
            KubeletStatus::Fail => (Status::Fail, "FAIL"),
            KubeletStatus::Unknown => (Status::Warn, "UNKNOWN"),
        };
        PathView {
            label: "kubelet",
            key: "kubelet",
            status,
            word,
            deciding: most_severe(k.stages.iter().flat_map(|s| &s.findings).chain(&k.findings))
                .filter(|f| status != Status::Fail || f.severity == Severity::Error)
                .or(last_failed.filter(|_| status == Status::Fail)),
        }
    }));
    out
}

/// The columns of a table: every path checked on at least one image, in the paths' order.
pub(crate) fn columns(report: &Report) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = Vec::new();
    for img in &report.images {
        for p in paths(report, img) {
            if !cols.contains(&p.label) {
                cols.push(p.label);
            }
        }
    }
    if cols.is_empty() {
        cols.push("pod identity");
    }
    cols
}

/// The finding that decides an image: a failed path's (the first that failed), else its
/// most severe warning or error. A pass is decided by nothing: its warnings are below the
/// table, so a passing row reads the same with one image as with twenty.
pub(crate) fn deciding<'a>(report: &'a Report, img: &'a ImageReport) -> Option<&'a Finding> {
    if img.verdict == Verdict::Pass {
        return None;
    }
    paths(report, img)
        .iter()
        .find(|p| p.status == Status::Fail)
        .and_then(|p| p.deciding)
        .or_else(|| {
            most_severe(
                img.all_findings()
                    .filter(|f| f.severity >= Severity::Warning),
            )
        })
}

/// Findings said in one line with a link to their page in docs/findings.md, not with their
/// cause and fix: the note on every pass that the kubelet may pull otherwise. Repeating four
/// paragraphs on each green run teaches readers to skip the findings.
pub(crate) fn brief(code: Code) -> bool {
    code == Code::POD_IDENTITY_CAN_PULL
}

/// Where a code's cause and fix are documented.
pub(crate) fn doc_link(code: Code) -> String {
    format!("docs/findings.md#{}", code.name().to_ascii_lowercase())
}

/// `1 image`, `2 images`.
pub(crate) fn images_count(n: usize) -> String {
    format!("{n} image{}", if n == 1 { "" } else { "s" })
}

/// Images in reading order: failed ones first, each group in the report's order.
pub(crate) fn ordered(report: &Report) -> Vec<&ImageReport> {
    let mut v: Vec<&ImageReport> = report.images.iter().collect();
    v.sort_by_key(|i| i.verdict == Verdict::Pass);
    v
}

/// Whether any image was checked on a path the kubelet uses (pull secrets, canary, ...).
pub(crate) fn kubelet_checked(report: &Report) -> bool {
    report.images.iter().any(|i| paths(report, i).len() > 1)
}

/// `registry/` when every image is on the same registry: printed once, cut from each name.
pub(crate) fn common_registry(report: &Report) -> Option<String> {
    let first = report.images.first()?;
    let reg = &first.reference.registry;
    let prefix = format!("{reg}/");
    report
        .images
        .iter()
        .all(|i| i.image.starts_with(&prefix))
        .then_some(prefix)
}

/// An image's name as the views show it (without the common registry).
pub(crate) fn short_name<'a>(img: &'a ImageReport, common: Option<&str>) -> &'a str {
    common
        .and_then(|c| img.image.strip_prefix(c))
        .unwrap_or(&img.image)
}

/// Upper-case spelling of every verdict and status, the same in every view.
pub(crate) fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::NotChecked => "NOT CHECKED",
    }
}

pub(crate) fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "SKIP",
    }
}

/// The verdict line every view starts with.
pub(crate) fn headline(report: &Report) -> String {
    let n = report.images.len();
    let failed = report
        .images
        .iter()
        .filter(|i| i.verdict != Verdict::Pass)
        .count();
    // When a kubelet path was checked, the verdict is the kubelet's (unless --require says
    // otherwise): the line says whose answer it leads with.
    let kubelet = match (kubelet_checked(report), report.require) {
        (false, _) => "no",
        (true, Require::Auto | Require::Kubelet) => "yes, the verdict is the kubelet's",
        (true, Require::All) => "yes, every path must pass",
        (true, Require::Pod) => "yes, the verdict is the pod identity's",
    };
    let what = match report.verdict {
        _ if crate::exit::exit(report) == crate::exit::Exit::Inconclusive => {
            let code = crate::report::all_findings(report)
                .find(|f| f.severity == Severity::Error && f.code.inconclusive())
                .or_else(|| crate::report::all_findings(report).find(|f| f.code.inconclusive()))
                .map_or(String::new(), |f| format!(" ({})", f.code.name()));
            // A pass whose kubelet answer is unknown counts those images; a fail, its failures.
            let open = if report.verdict == Verdict::Pass {
                report
                    .images
                    .iter()
                    .filter(|i| {
                        i.paths.effective(report.require) == Require::Kubelet
                            && !matches!(
                                i.paths.kubelet_status(),
                                Some(KubeletStatus::Pass | KubeletStatus::Fail)
                            )
                    })
                    .count()
            } else {
                failed
            };
            return format!(
                "INCONCLUSIVE: {open} of {} could not be checked to an answer{code}, kubelet path checked: {kubelet}",
                images_count(n)
            );
        }
        // With no kubelet path, a pass says whose: the kubelet pulls with other credentials.
        Verdict::Pass if !kubelet_checked(report) => {
            let what = if n == 1 {
                "the image can be pulled".to_string()
            } else {
                format!("all {n} images can be pulled")
            };
            return format!("PASS (pod identity only; the kubelet's path not checked): {what}");
        }
        Verdict::Pass if n == 1 => "the image can be pulled".to_string(),
        Verdict::Pass => format!("all {n} images can be pulled"),
        Verdict::Error | Verdict::NotChecked => {
            let code = crate::report::all_findings(report)
                .find(|f| f.code.spec().configuration_error)
                .map_or("", |f| f.code.name());
            format!("the probe could not run as asked ({code})")
        }
        Verdict::Fail => {
            let id = identity_error(report)
                .map(|f| format!(" (identity: {})", f.code.name()))
                .unwrap_or_default();
            format!("{failed} of {} cannot be pulled{id}", images_count(n))
        }
        // Caught by the first arm (`exit` is inconclusive for every such run).
        Verdict::Inconclusive => format!(
            "for {failed} of {} the kubelet's answer cannot be known from this run",
            images_count(n)
        ),
    };
    format!(
        "{}: {what}, kubelet path checked: {kubelet}",
        verdict_word(report.verdict)
    )
}

/// Where a finding was found: the identity, or an image (by its short name).
#[derive(Debug, Clone)]
pub(crate) struct Instance<'a> {
    pub image: Option<&'a str>,
    pub finding: &'a Finding,
}

/// Findings grouped by code: errors first, then warnings, then infos, each in order of first
/// appearance (identity, then images failed-first).
pub(crate) struct Group<'a> {
    pub code: Code,
    pub severity: Severity,
    pub instances: Vec<Instance<'a>>,
}

impl Group<'_> {
    /// The images it applies to, once each, in order.
    pub fn images(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for i in &self.instances {
            if let Some(n) = i.image
                && !v.contains(&n)
            {
                v.push(n);
            }
        }
        v
    }

    pub fn on_identity(&self) -> bool {
        self.instances.iter().any(|i| i.image.is_none())
    }

    /// Distinct values of `f` (summaries, fixes) with the images each applies to.
    pub fn distinct<'s>(
        &'s self,
        f: impl Fn(&'s Finding) -> &'s str,
    ) -> Vec<(&'s str, Vec<&'s str>)> {
        let mut v: Vec<(&str, Vec<&str>)> = Vec::new();
        for i in &self.instances {
            let key = f(i.finding);
            let name = i.image.unwrap_or("identity");
            match v.iter_mut().find(|(k, _)| *k == key) {
                Some((_, names)) if !names.contains(&name) => names.push(name),
                Some(_) => {}
                None => v.push((key, vec![name])),
            }
        }
        v
    }
}

pub(crate) fn groups(report: &Report) -> Vec<Group<'_>> {
    let common = common_registry(report);
    let mut order: Vec<Code> = Vec::new();
    let mut by_code: BTreeMap<Code, Group<'_>> = BTreeMap::new();
    let identity = report.identity.stages.iter().flat_map(|s| &s.findings);
    let mut all: Vec<Instance<'_>> = identity
        .map(|finding| Instance {
            image: None,
            finding,
        })
        .collect();
    for img in ordered(report) {
        let name = short_name(img, common.as_deref());
        all.extend(img.all_findings().map(|finding| Instance {
            image: Some(name),
            finding,
        }));
    }
    for inst in all {
        let code = inst.finding.code;
        let g = by_code.entry(code).or_insert_with(|| {
            order.push(code);
            Group {
                code,
                severity: inst.finding.severity,
                instances: Vec::new(),
            }
        });
        g.severity = g.severity.max(inst.finding.severity);
        g.instances.push(inst);
    }
    let mut out: Vec<Group<'_>> = order.iter().filter_map(|c| by_code.remove(c)).collect();
    // Stable: within a severity, first appearance.
    out.sort_by_key(|g| std::cmp::Reverse(g.severity));
    out
}

/// A name for the severity heading of a group of findings.
pub(crate) fn severity_heading(s: Severity) -> &'static str {
    match s {
        Severity::Error => "errors",
        Severity::Warning => "warnings",
        Severity::Info => "info",
    }
}

/// Evidence values as one line each (strings bare, the rest as JSON).
pub(crate) fn evidence_lines(f: &Finding) -> Vec<(String, String)> {
    f.evidence
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// "a, b, c and 12 more", or "all 16 images" (or "both") when it is every image of the run.
pub(crate) fn image_list(names: &[&str], total: usize, limit: usize) -> String {
    if names.len() == total && total == 2 {
        return "both images".into();
    }
    if names.len() == total && total > 2 {
        return format!("all {total} images");
    }
    let shown = names
        .iter()
        .take(limit)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(limit) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Kubernetes keeps at most 4096 bytes of a termination message.
pub const TERMINATION_LIMIT: usize = 4096;

/// A few lines for `/dev/termination-log`, so `kubectl get pod -o jsonpath=
/// '{..terminated.message}'` shows the verdict without logs: the verdict, then each failing
/// image with its first error code, cut to fit the limit.
pub fn termination_summary(report: &Report) -> String {
    let verdict = wire_name(&report.verdict);
    let mut out = format!(
        "ecr-pull-probe {verdict}: {} of {} pullable\n",
        report
            .images
            .iter()
            .filter(|i| i.verdict == Verdict::Pass)
            .count(),
        images_count(report.images.len())
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
        let code = deciding(report, img)
            .or_else(|| img.all_findings().find(|f| f.severity == Severity::Error))
            .map_or("NOT_CHECKED", |f| f.code.name());
        out.push_str(&format!("{} {code}\n", clean(&img.image)));
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
pub(crate) mod testdata;

#[cfg(test)]
mod tests;
