//! The renderers on hand-built reports; the golden files in `tests/render.rs` cover real runs.

use super::testdata::*;
use super::*;
use crate::diagnosis::Code;
use crate::report::*;

const PLAIN: Style = Style { color: false };

/// The cells of the first table in `md`, read by a CommonMark parser with GitHub's tables:
/// the proof that the table is a table.
pub fn table_cells(md: &str) -> Vec<Vec<String>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows: Vec<Vec<String>> = Vec::new();
    let (mut in_table, mut done) = (false, false);
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Table(_)) if !done => in_table = true,
            Event::End(TagEnd::Table) => {
                in_table = false;
                done = true;
            }
            Event::Start(Tag::TableHead | Tag::TableRow) if in_table => rows.push(vec![]),
            Event::Start(Tag::TableCell) if in_table => {
                if let Some(r) = rows.last_mut() {
                    r.push(String::new());
                }
            }
            Event::Text(t) | Event::Code(t) if in_table => {
                if let Some(c) = rows.last_mut().and_then(|r| r.last_mut()) {
                    c.push_str(&t);
                }
            }
            _ => {}
        }
    }
    rows
}

#[test]
fn json_round_trips() {
    let r = sample();
    let back: Report = serde_json::from_str(&json(&r)).unwrap();
    assert_eq!(back, r);
}

#[test]
fn text_starts_with_the_verdict_and_counts() {
    let t = text(&fleet(3, 1), PLAIN);
    let first = t.lines().next().unwrap();
    assert_eq!(
        first,
        "FAIL: 1 of 3 images cannot be pulled, kubelet path checked: no"
    );
    // A pass with no kubelet path says whose pass it is (issue 30 point 6).
    let t = text(&fleet(2, 9), PLAIN);
    assert!(
        t.starts_with(
            "PASS (pod identity only; the kubelet's path not checked): all 2 images can be pulled\n"
        ),
        "{t}"
    );
    let t = text(&fleet(1, 9), PLAIN);
    assert!(
        t.starts_with(
            "PASS (pod identity only; the kubelet's path not checked): the image can be pulled\n"
        ),
        "{t}"
    );
    assert!(t.contains(", 1 image in "), "no \"1 images\": {t}");
}

/// A passing row is decided by nothing, with one image as with many: its warnings are said
/// below the table (issue 30 point 6).
#[test]
fn a_passing_row_shows_no_warning_under_decided_by() {
    for n in [1, 2] {
        let t = text(&fleet(n, 9), PLAIN);
        let row = t
            .lines()
            .skip_while(|l| !l.contains("DECIDED BY"))
            .nth(1)
            .unwrap();
        assert!(
            row.starts_with("PASS") && row.ends_with("PASS"),
            "{n} images: {row:?}\n{t}"
        );
    }
}

/// The note on every pass is one line with a link, in text and Markdown (issue 30 point 6).
#[test]
fn the_pod_identity_note_is_one_line_with_a_link() {
    let spec = Code::POD_IDENTITY_CAN_PULL.spec();
    for out in [text(&fleet(2, 9), PLAIN), markdown(&fleet(2, 9))] {
        assert!(
            !out.contains(spec.cause) && !out.contains(spec.remediation),
            "{out}"
        );
        let line = out
            .lines()
            .find(|l| l.contains("POD_IDENTITY_CAN_PULL"))
            .unwrap();
        assert!(
            line.contains("docs/findings.md#pod_identity_can_pull"),
            "{line}"
        );
        assert!(
            !out.contains("can pull x.example"),
            "no summary lines: {out}"
        );
    }
}

#[test]
fn text_lists_failed_images_first_with_the_deciding_finding() {
    let t = text(&fleet(16, 9), PLAIN);
    let rows: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.contains("IMAGE"))
        .skip(1)
        .take(16)
        .collect();
    assert!(rows[0].starts_with("FAIL   svc-009:v9"), "{t}");
    assert!(rows[0].ends_with("MANIFEST_NOT_FOUND"), "{t}");
    assert!(rows[1..].iter().all(|r| r.starts_with("PASS ")), "{t}");
    assert!(
        t.contains("registry: x.example\n"),
        "the common registry once: {t}"
    );
}

#[test]
fn text_prints_each_cause_and_fix_once() {
    let t = text(&fleet(16, 9), PLAIN);
    let spec = Code::ECR_TOKEN_EXPIRED_AT_ISSUE.spec();
    assert_eq!(t.matches(spec.cause).count(), 1, "{t}");
    assert_eq!(t.matches(spec.remediation).count(), 1, "{t}");
    assert!(t.contains("  ECR_TOKEN_EXPIRED_AT_ISSUE: "), "{t}");
    assert!(
        t.contains("all 15 images") || t.contains("(15 images)"),
        "{t}"
    );
    let (e, w, i) = (
        t.find("\nerrors\n").unwrap(),
        t.find("\nwarnings\n").unwrap(),
        t.find("\ninfo\n").unwrap(),
    );
    assert!(e < w && w < i, "errors, then warnings, then infos: {t}");
    assert!(
        t.lines().count() <= 45,
        "16 images fit a screen: {} lines\n{t}",
        t.lines().count()
    );
}

#[test]
fn text_stays_short_at_200_images() {
    let t = text(&fleet(200, 150), PLAIN);
    assert!(t.lines().count() < 40, "{t}");
    assert!(t.contains("199 more images PASS"), "{t}");
    assert!(t.contains("svc-150:v9"), "{t}");
}

#[test]
fn only_checked_paths_get_a_column() {
    let t = text(&fleet(2, 0), PLAIN);
    assert!(
        t.contains("POD IDENTITY") && !t.contains("PULL SECRETS"),
        "{t}"
    );
    let t = text(&kubelet_fails(), PLAIN);
    assert!(
        t.starts_with("FAIL: 1 of 2 images cannot be pulled, kubelet path checked: yes"),
        "{t}"
    );
    let row = t.lines().find(|l| l.contains("app:latest")).unwrap();
    assert!(
        row.contains("PASS          FAIL") && row.ends_with("PULL_SECRET_NO_MATCH"),
        "pod identity passes, pull secrets fail and decide: {row}"
    );
}

#[test]
fn colour_only_when_asked() {
    let r = fleet(2, 0);
    assert!(!text(&r, PLAIN).contains('\x1b'));
    let c = text(&r, Style { color: true });
    assert!(c.contains("\x1b[31;1mFAIL"), "{c}");
    assert!(c.contains("\x1b[32mPASS"), "{c}");
}

#[test]
fn clean_makes_control_characters_visible() {
    assert_eq!(clean("a\x1b[2Jb\x07\r\n\tc"), "a\\x1b[2Jb\\x07\\x0d\n\tc");
    assert_eq!(clean("x\u{202e}y\u{9b}"), "x\\u{202e}y\\x9b");
    assert_eq!(clean("plain ünïcode"), "plain ünïcode");
}

#[test]
fn hostile_registry_text_is_inert_in_text() {
    let t = text(&hostile(), PLAIN);
    assert!(
        !t.contains('\x1b') && !t.contains('\x07') && !t.contains('\r'),
        "{t:?}"
    );
    assert!(!t.contains('\u{202e}'), "{t:?}");
    assert!(t.contains("denied\\x1b[2J\\x1b]0;owned\\x07"), "{t}");
    // A line of its own would look like the probe's: the forged line stays on the summary's.
    assert!(!t.lines().any(|l| l.starts_with("forged line")), "{t}");
    let c = text(&hostile(), Style { color: true });
    assert!(!c.contains("\x1b[2J") && !c.contains("\x1b]0;"), "{c:?}");
}

#[test]
fn hostile_registry_text_is_inert_in_markdown() {
    let md = markdown(&hostile());
    assert!(!md.contains('\x1b') && !md.contains('\u{202e}'), "{md:?}");
    let rows = table_cells(&md);
    let width = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == width), "{rows:?}");
    assert_eq!(rows.len(), 3, "a head and two images: {rows:?}");
    let bad = rows
        .iter()
        .find(|r| r[1].contains("app|<x>:v1"))
        .expect("row");
    assert!(
        bad[width - 1].contains("| col | <b>x</b> ]]> & `code`"),
        "{bad:?}"
    );
    // No raw HTML reaches the page.
    use pulldown_cmark::{Event, Options, Parser};
    let html: Vec<_> = Parser::new_ext(&md, Options::ENABLE_TABLES)
        .filter(|e| matches!(e, Event::Html(_) | Event::InlineHtml(_)))
        .collect();
    assert!(html.is_empty(), "{html:?}");
}

#[test]
fn hostile_registry_text_is_inert_in_junit() {
    let x = junit(&hostile());
    assert!(!x.contains('\x1b') && !x.contains('\x07'), "{x:?}");
    assert!(!x.contains("<b>") && !x.contains("]]>"), "{x}");
    assert!(x.contains("&lt;b&gt;x&lt;/b&gt; ]]&gt; &amp;"), "{x}");
    assert!(x.contains("name=\"x.example/app|&lt;x&gt;:v1\""), "{x}");
}

#[test]
fn markdown_has_one_row_per_image_and_grouped_findings() {
    let md = markdown(&fleet(16, 9));
    let rows = table_cells(&md);
    assert_eq!(rows.len(), 17, "{md}");
    assert_eq!(
        rows[0],
        ["Verdict", "Image", "Pod identity", "Decided by"],
        "{md}"
    );
    assert!(rows[1][1].contains("svc-009:v9") && rows[1][3].starts_with("MANIFEST_NOT_FOUND"));
    let spec = Code::ECR_TOKEN_EXPIRED_AT_ISSUE.spec();
    assert_eq!(md.matches(spec.cause).count(), 1, "{md}");
}

#[test]
fn junit_has_a_case_per_image_and_path() {
    let x = junit(&kubelet_fails());
    // The identity, then per image its pod identity, pull secrets and the kubelet's answer.
    assert_eq!(x.matches("<testcase ").count(), 1 + 2 * 3, "{x}");
    assert!(x.contains("failures=\"2\" errors=\"0\""), "{x}");
    assert!(
        x.contains("classname=\"ecr-pull-probe.kubelet\" name=\"x.example/app:latest\""),
        "{x}"
    );
    assert!(
        x.contains("classname=\"ecr-pull-probe.pull_secrets\" name=\"x.example/app:latest\""),
        "{x}"
    );
    assert!(x.contains("<failure type=\"PULL_SECRET_NO_MATCH\""), "{x}");
}

#[test]
fn termination_summary_names_failures_and_fits_the_limit() {
    let t = termination_summary(&sample());
    assert_eq!(
        t,
        "ecr-pull-probe fail: 0 of 1 image pullable\nx.example/app:v9 MANIFEST_NOT_FOUND\n"
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
    let r = kubelet_fails();
    assert!(termination_summary(&r).contains("x.example/app:latest PULL_SECRET_NO_MATCH"));
}

#[test]
fn junit_timestamps_are_the_ant_form_without_zone_or_fraction() {
    use super::junit::ant_timestamp;
    assert_eq!(
        ant_timestamp("2026-11-28T09:15:36.240277041Z"),
        "2026-11-28T09:15:36"
    );
    assert_eq!(ant_timestamp("2026-11-28T09:15:36Z"), "2026-11-28T09:15:36");
    assert_eq!(
        ant_timestamp("2026-11-28T09:15:36+00:00"),
        "2026-11-28T09:15:36"
    );
}

/// Issue 30 point 4: a run that could not tell says so in the first line every view starts
/// with, instead of "cannot be pulled"; one refusal beside it keeps the FAIL.
#[test]
fn an_inconclusive_run_says_so_in_the_headline() {
    let unreachable = |name: &str| {
        let f = Finding::new(Code::REGISTRY_UNREACHABLE, "cannot connect to x.example");
        image(
            name,
            vec![Stage::from_findings("manifest", 5, None, vec![f])],
        )
    };
    let r = report(vec![unreachable("a:1"), passing("b:1")]);
    assert_eq!(crate::exit::exit(&r), crate::exit::Exit::Inconclusive);
    let first = text(&r, PLAIN).lines().next().unwrap().to_string();
    assert_eq!(
        first,
        "INCONCLUSIVE: 1 of 2 images could not be checked to an answer (REGISTRY_UNREACHABLE), kubelet path checked: no"
    );
    let md = markdown(&r);
    assert!(
        md.starts_with("### ❌ INCONCLUSIVE: 1 of 2 images could not be checked"),
        "{md}"
    );
    let r = report(vec![unreachable("a:1"), failing("b:1")]);
    assert_eq!(crate::exit::exit(&r), crate::exit::Exit::No);
    assert!(text(&r, PLAIN).starts_with("FAIL: 2 of 2 images cannot be pulled"));
}
