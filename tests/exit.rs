//! The exit-code contract (README, "Exit codes"), run for real: each misconfiguration of
//! issue 30 against the local stack, its code from `check`, and the same code from `render`
//! of the report it saved. Then the closed pipe (a quiet end keeping the code) and the
//! images a run that could not start never checked, in every format.

mod common;

use std::process::Stdio;

use common::fault::{Fault, FaultRegistry};
use common::*;

/// One row of the table: what is wrong, the extra arguments and environment, the code.
struct Case {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, Option<String>)>,
    code: i32,
}

fn case(
    what: &'static str,
    args: &[&str],
    env: &[(&'static str, Option<&str>)],
    code: i32,
) -> Case {
    Case {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (*k, v.map(str::to_string)))
            .collect(),
        code,
    }
}

#[test]
fn each_kind_of_outcome_exits_with_its_code_from_check_and_from_render() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let image = s.image("naming-server-service:latest");
    let missing_tag = s.image("naming-server-service:v9-missing");
    let malformed = dir.path().join("malformed");
    std::fs::write(&malformed, "not-a-jwt").unwrap();
    let refused = format!("http://127.0.0.1:{}", refused_port());
    let unreachable_registry = format!(
        "{}=https://127.0.0.1:{}",
        s.var("STACK_ECR_HOST"),
        refused_port()
    );
    let stall = FaultRegistry::start(Fault::StallLayer);
    let stalled = format!("{}=http://{}", s.var("STACK_ECR_HOST"), stall.addr);
    let faulty = s.image("faulty:latest");
    let table = [
        case("every check passed", &[&image], &[], 0),
        case("a tag that does not exist", &[&missing_tag], &[], 1),
        case(
            "a malformed token",
            &[&image],
            &[(
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                Some(malformed.to_str().unwrap()),
            )],
            1,
        ),
        case(
            "an unset token variable (no credentials at all)",
            &[&image],
            &[("AWS_WEB_IDENTITY_TOKEN_FILE", None)],
            1,
        ),
        case(
            "no web identity and no credentials at all",
            &[&image],
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
                ("AWS_ROLE_ARN", None),
            ],
            1,
        ),
        case(
            "an unreadable token file",
            &[&image],
            &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some("/nonexistent/token"))],
            2,
        ),
        case(
            "the AWS API unreachable",
            &[&image],
            &[("AWS_ENDPOINT_URL", Some(&refused))],
            3,
        ),
        case(
            "the registry unreachable",
            &[&image],
            &[(
                "ECR_PULL_PROBE_REGISTRY_ENDPOINT",
                Some(&unreachable_registry),
            )],
            3,
        ),
        case(
            "the deadline passed",
            &[&faulty, "--timeout", "2s"],
            &[
                ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&stalled)),
                ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
            ],
            3,
        ),
    ];
    let mut wrong = Vec::new();
    for (i, c) in table.iter().enumerate() {
        let saved = dir.path().join(format!("{i}.json"));
        let mut args = vec!["check", "--json", saved.to_str().unwrap()];
        args.extend(c.args.iter().map(String::as_str));
        let env: Vec<(&str, Option<&str>)> =
            c.env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let run = probe(&args, &env);
        run.report();
        let rendered = probe(&["render", saved.to_str().unwrap()], &[]);
        if run.code != c.code || rendered.code != c.code {
            wrong.push(format!(
                "{}: check exited {}, render {}, want {}\n{}",
                c.what, run.code, rendered.code, c.code, run.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Usage errors never get as far as a report.
    assert_eq!(check(&[&image, "--timeout", "90"]).code, 2);
    assert_eq!(probe(&["check", "--no-such-flag"], &[]).code, 2);
}

/// Runs the binary with stdout a pipe whose reading end is already closed, as `| true` or a
/// `| head -1` that has read its line leaves it.
fn into_a_closed_pipe(args: &[&str]) -> (i32, String) {
    let mut child = probe_command(args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().expect("exited, not killed by a signal"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_is_a_quiet_end_that_keeps_the_verdicts_code() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("r.json");
    let missing = s.image("naming-server-service:v9-missing");
    for (args, code) in [
        (vec!["check", "--output", "text", &missing], 1),
        (
            vec![
                "check",
                "--json",
                saved.to_str().unwrap(),
                &s.image("naming-server-service:latest"),
            ],
            0,
        ),
    ] {
        let (got, stderr) = into_a_closed_pipe(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
    // The file asked for beside stdout is still written.
    assert!(saved.exists());
    let (got, stderr) =
        into_a_closed_pipe(&["render", "--output", "markdown", saved.to_str().unwrap()]);
    assert_eq!(got, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// A run that cannot start (the token file missing: `error`, exit 2) checked no image: each
/// says so in every format, none says FAIL.
#[test]
fn images_a_run_never_got_to_are_not_checked_in_every_format() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (j, m, x) = (file("r.json"), file("r.md"), file("r.xml"));
    let images = [
        s.image("naming-server-service:latest"),
        s.image("gateway:latest"),
    ];
    let run = probe(
        &[
            "check",
            "--output",
            "text",
            "--json",
            &j,
            "--markdown",
            &m,
            "--junit",
            &x,
            &images[0],
            &images[1],
        ],
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some("/nonexistent/token"))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    validate(&json);
    assert_eq!(json["verdict"], "error");
    for img in json["images"].as_array().unwrap() {
        assert_eq!(img["verdict"], "not_checked", "{img:#}");
        assert_eq!(img["paths"]["pod_identity"], "skip", "{img:#}");
    }
    let text = &run.stdout;
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("DECIDED BY"))
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for r in &rows {
        assert!(
            r.starts_with("NOT CHECKED") && !r.contains("FAIL"),
            "{text}"
        );
    }
    let md = std::fs::read_to_string(&m).unwrap();
    let md_rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("consultingfirm/"))
        .collect();
    assert_eq!(md_rows.len(), 2, "{md}");
    for r in &md_rows {
        assert!(r.contains("NOT CHECKED") && !r.contains("FAIL"), "{md}");
    }
    let junit = std::fs::read_to_string(&x).unwrap();
    assert!(!junit.contains("<failure"), "{junit}");
    // The identity's case is the error; each image's is skipped, not failed.
    assert_eq!(junit.matches("<error ").count(), 1, "{junit}");
    assert_eq!(
        junit
            .matches("<skipped message=\"not checked: WEB_IDENTITY_TOKEN_UNREADABLE")
            .count(),
        2,
        "{junit}"
    );
}
