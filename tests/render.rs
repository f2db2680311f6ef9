//! The reports for people and pipelines, on real runs against the local stack: text, Markdown
//! and JUnit compared with golden files, all written by one run (`--output text` on stdout,
//! `--json`, `--markdown`, `--junit` files), the XML validated against the JUnit XSD the CIs
//! accept (`tests/fixtures/junit.xsd`, with `xmllint`) and the Markdown read back by a
//! CommonMark parser.
//!
//! Golden files live in `tests/golden/`. What varies between runs (durations, timestamps,
//! ports, temporary paths) is normalised before comparing. After an intended change, rewrite
//! them with `UPDATE_GOLDEN=1 cargo test --test render` and review the diff.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

struct Outputs {
    code: i32,
    text: String,
    markdown: String,
    junit: String,
    json: Value,
}

/// One run writing every format.
fn run(images: &[String], env: &[(&str, Option<&str>)]) -> (tempfile::TempDir, Outputs) {
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (j, m, x) = (file("r.json"), file("r.md"), file("r.xml"));
    let mut args = vec!["check", "--output", "text", "--json", &j, "--markdown", &m];
    args.extend(["--junit", &x]);
    args.extend(images.iter().map(String::as_str));
    let r = probe(&args, env);
    assert_ne!(r.code, 2, "{}", r.stderr);
    let read =
        |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}\n{}", r.stderr));
    let json: Value = serde_json::from_str(&read(&j)).unwrap();
    validate(&json);
    let out = Outputs {
        code: r.code,
        text: r.stdout,
        markdown: read(&m),
        junit: read(&x),
        json,
    };
    (dir, out)
}

fn normalize(s: &str, tmp: &Path) -> String {
    let stack = Stack::get();
    let mut s = s
        .replace(tmp.to_str().unwrap(), "$TMP")
        .replace(stack.var("STACK_DIR"), "$STACK_DIR");
    for (pattern, with) in [
        (r"\b\d+ ms\b", "N ms"),
        (r#"time="[0-9.]+""#, r#"time="T""#),
        (r#"timestamp="[^"]*""#, r#"timestamp="T""#),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME"),
        (r"\bRequestId: [0-9A-Za-z-]+", "RequestId: ID"),
        (r"\b\d+ s ago\b", "N s ago"),
    ] {
        s = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&s, with)
            .into_owned();
    }
    s
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    assert_golden(&path, actual, "render");
}

/// The XML against the JUnit XSD, with xmllint (installed by `scripts/stack install`).
fn validate_junit(xml: &str, dir: &Path) {
    if let Err(e) = junit_schema_check(xml, dir) {
        panic!("JUnit XML does not match tests/fixtures/junit.xsd:\n{e}\n{xml}");
    }
}

fn junit_schema_check(xml: &str, dir: &Path) -> Result<(), String> {
    let file = dir.join("check.xml");
    std::fs::write(&file, xml).unwrap();
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .expect("xmllint runs (apt package libxml2-utils; scripts/stack install adds it)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The schema is written by us, so it must first prove it refuses what the CI readers refuse:
/// a test case without a name, a count that is not a number, a zoned timestamp, an unknown
/// outcome element.
#[test]
fn the_junit_schema_refuses_what_ci_readers_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="s" tests="1" failures="1" errors="0" time="0.5">
  <testsuite name="s" tests="1" failures="1" errors="0" skipped="0" time="0.5" timestamp="2026-11-28T09:15:36">
    <testcase classname="c" name="n" time="0.5"><failure message="m" type="T">details</failure></testcase>
  </testsuite>
</testsuites>
"#;
    junit_schema_check(good, dir.path()).expect("the well-formed sample passes");
    for (bad, why) in [
        (
            good.replace(r#" name="n""#, ""),
            "a test case without a name",
        ),
        (
            good.replace(
                r#"tests="1" failures="1" errors="0" skipped"#,
                r#"tests="one" failures="1" errors="0" skipped"#,
            ),
            "a count that is not a number",
        ),
        (
            good.replace("09:15:36\"", "09:15:36Z\""),
            "a zoned timestamp",
        ),
        (
            good.replace("<failure", "<flaky")
                .replace("</failure>", "</flaky>"),
            "an unknown outcome",
        ),
    ] {
        assert!(
            junit_schema_check(&bad, dir.path()).is_err(),
            "the schema accepts {why}:\n{bad}"
        );
    }
}

/// The rows of the first table, as a CommonMark parser with GitHub's tables reads them.
fn table_rows(md: &str) -> Vec<Vec<String>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut in_table = false;
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Table(_)) if rows.is_empty() => in_table = true,
            Event::End(TagEnd::Table) => in_table = false,
            Event::Start(Tag::TableHead | Tag::TableRow) if in_table => rows.push(vec![]),
            Event::Start(Tag::TableCell) if in_table => {
                rows.last_mut().unwrap().push(String::new())
            }
            Event::Text(t) | Event::Code(t) if in_table => {
                rows.last_mut().unwrap().last_mut().unwrap().push_str(&t)
            }
            _ => {}
        }
    }
    rows
}

fn check_all(name: &str, images: &[String], env: &[(&str, Option<&str>)]) -> Outputs {
    let (dir, out) = run(images, env);
    validate_junit(&out.junit, dir.path());
    let rows = table_rows(&out.markdown);
    assert_eq!(
        rows.len(),
        images.len() + 1,
        "a head and a row per image:\n{}",
        out.markdown
    );
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{rows:?}");
    golden(&format!("{name}.txt"), &normalize(&out.text, dir.path()));
    golden(&format!("{name}.md"), &normalize(&out.markdown, dir.path()));
    golden(&format!("{name}.xml"), &normalize(&out.junit, dir.path()));
    out
}

/// The sixteen images of the original incident's size: the stack's images, the fleet, and one
/// tag that does not exist.
fn sixteen() -> Vec<String> {
    let s = Stack::get();
    let mut v: Vec<String> = [
        "naming-server-service:latest",
        "naming-server-service:v1.4.2",
        "multiarch:latest",
        "docker-list:latest",
    ]
    .iter()
    .map(|n| s.image(n))
    .collect();
    v.extend(
        s.var("STACK_FLEET")
            .split(',')
            .map(|n| s.image(&format!("{n}:latest"))),
    );
    v.insert(9, s.image("naming-server-service:v9-missing"));
    assert_eq!(v.len(), 16, "the stack's fleet changed: {v:?}");
    v
}

#[test]
fn a_pass() {
    let s = Stack::get();
    let images = [
        s.image("naming-server-service:latest"),
        s.image("multiarch:latest"),
    ];
    let out = check_all("pass", &images, &[]);
    assert_eq!(out.code, 0);
    assert!(out.text.starts_with(
        "PASS (pod identity only; the kubelet's path not checked): all 2 images can be pulled"
    ));
}

#[test]
fn sixteen_images_one_missing_fit_a_screen_with_the_failure_on_top() {
    let out = check_all("mixed16", &sixteen(), &[]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.text.lines().collect();
    assert_eq!(
        lines[0],
        "FAIL: 1 of 16 images cannot be pulled, kubelet path checked: no"
    );
    assert!(lines.len() <= 50, "one screen: {} lines", lines.len());
    let first_row = lines.iter().position(|l| l.contains("IMAGE")).unwrap() + 1;
    assert!(
        lines[first_row].starts_with("FAIL") && lines[first_row].contains("v9-missing"),
        "{}",
        out.text
    );
    // The JSON written beside it is the same run's.
    assert_eq!(out.json["verdict"], "fail");
    assert_eq!(out.json["images"].as_array().unwrap().len(), 16);
    assert_eq!(
        out.junit.matches("<testcase ").count(),
        1 + 16,
        "the identity and one case per image and path"
    );
    assert_eq!(
        out.junit
            .matches("<failure type=\"MANIFEST_NOT_FOUND\"")
            .count(),
        1
    );
}

#[test]
fn an_identity_failure() {
    let dir = tempfile::tempdir().unwrap();
    // Fixed times in the past, so the summaries are the same on every run.
    let mut claims = good_claims();
    for (k, v) in [
        ("iat", 1_700_000_000),
        ("nbf", 1_700_000_000),
        ("exp", 1_700_003_600),
    ] {
        claims[k] = json!(v);
    }
    let token = write_token(dir.path(), "token", &claims);
    let s = Stack::get();
    let images = [
        s.image("naming-server-service:latest"),
        s.image("gateway:latest"),
    ];
    let out = check_all(
        "identity",
        &images,
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some(token.to_str().unwrap()))],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.text.starts_with(
            "FAIL: 2 of 2 images cannot be pulled (identity: WEB_IDENTITY_TOKEN_EXPIRED)"
        ),
        "{}",
        out.text
    );
    assert!(
        out.junit
            .contains("<failure type=\"WEB_IDENTITY_TOKEN_EXPIRED\"")
    );
}

#[test]
fn render_turns_a_saved_report_into_the_same_text() {
    let s = Stack::get();
    let (dir, out) = run(&[s.image("naming-server-service:v9-missing")], &[]);
    let saved = dir.path().join("r.json");
    let r = probe(
        &["render", "--output", "text", saved.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 1, "the saved run's own code: {}", r.stderr);
    assert_eq!(r.stdout, out.text);
    let r = probe(
        &["render", "--output", "junit", "/nonexistent/report.json"],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/report.json"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_output_file_that_cannot_be_written_is_a_usage_error() {
    let s = Stack::get();
    let r = check(&[
        &s.image("naming-server-service:latest"),
        "--junit",
        "/nonexistent/dir/junit.xml",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("/nonexistent/dir/junit.xml"),
        "{}",
        r.stderr
    );
    // The main output was still printed, and is JSON as before.
    r.report();
}
