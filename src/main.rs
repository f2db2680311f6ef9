//! The binary: parse, run, print, exit. Exit codes are decided in one place, [`exit_code`].
#![forbid(unsafe_code)]

use std::error::Error;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use ecr_pull_probe::cli::{Cli, Command};
use ecr_pull_probe::config::{
    CheckArgs, Config, OutputFormat, Outputs, RenderArgs, ServeArgs, ServeConfig,
};
use ecr_pull_probe::report::Report;
use ecr_pull_probe::{diagnose, exit, gate, logging, probe, render, serve};

type BoxError = Box<dyn Error>;

/// The one place a report becomes an exit code: 0 pass, 1 the gate says no, 2 the probe could
/// not run as asked, 3 inconclusive ([`exit::exit`], the README's table). `main` maps every
/// error to 2.
fn exit_code(report: &Report) -> ExitCode {
    ExitCode::from(exit::exit(report).code())
}

/// The runtime a command runs on.
#[derive(Clone, Copy)]
enum Runtime {
    /// `check`, `diagnose`, `gate`: one short-lived process whose work is a few requests and
    /// a few blob streams. On one thread a TLS record is read, decrypted and hashed where it
    /// arrived; on a pool the stream was handed between workers record by record (12,846
    /// reads, 1,406 futex calls for 200 MiB), which cost a quarter of the wall time and half
    /// the system time (BENCHMARKS.md, issue 28). Concurrency (images side by side) is async
    /// and unchanged; DNS and files still go to tokio's blocking pool.
    OneThread,
    /// `serve`: a long-lived server whose scrapes must be answered while a check hashes.
    Pool,
}

/// Runs `fut` on a fresh runtime of the given shape, then lets any canary pod's delete (sent
/// from a guard a deadline dropped) finish, and shuts the runtime down with a bounded wait:
/// idle pool threads or a cancelled run must not hold the process (or the pod) past its work.
fn block_on<T, E: Error + 'static>(
    shape: Runtime,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, BoxError> {
    let rt = match shape {
        Runtime::OneThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::Pool => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    let out = rt.block_on(fut);
    // On one thread nothing runs between `block_on`s: a delete spawned as the run ended gets
    // its turn here (at once when there is none).
    rt.block_on(ecr_pull_probe::paths::canary::settle(CANARY_DELETE_GRACE));
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(out?)
}

/// How long a run that ends with a canary pod's delete still in flight waits for it.
const CANARY_DELETE_GRACE: Duration = Duration::from_secs(2);

/// Writes the summary where the kubelet reads a termination message. The default path exists
/// only in a container; elsewhere nothing is written. A failure to write is logged, never fatal.
fn write_termination_message(report: &Report) {
    let path = std::env::var_os("ECR_PULL_PROBE_TERMINATION_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/dev/termination-log".into());
    if !path.exists() {
        return;
    }
    if let Err(e) = std::fs::write(&path, render::termination_summary(report)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the termination message");
    }
}

/// Colour is for a person at a terminal who did not opt out (https://no-color.org): decided
/// here, at the edge, so the renderers stay pure.
fn stdout_style(format: OutputFormat) -> render::Style {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    render::Style {
        color: format == OutputFormat::Text && !no_color && std::io::stdout().is_terminal(),
    }
}

fn rendered(report: &Report, format: OutputFormat, style: render::Style) -> String {
    let mut out = match format {
        OutputFormat::Json => render::json(report),
        OutputFormat::Text => render::text(report, style),
        OutputFormat::Markdown => render::markdown(report),
        OutputFormat::Junit => render::junit(report),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the {format:?} report to {path}")]
struct WriteOutput {
    format: OutputFormat,
    path: String,
    #[source]
    source: std::io::Error,
}

/// Writes the main output to stdout. A reader that went away (`| head -1`, `| true`) is a
/// quiet end, as for ripgrep and jq: the rest is dropped and the verdict's exit code stands.
/// Any other write error is one (exit 2).
fn print_stdout(text: &str) -> Result<(), std::io::Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The main output on stdout, then every extra file. The verdict stands whatever happens to a
/// file, but a file the caller asked for and did not get is an error (exit 2): a gate must not
/// pass with its CI view missing.
fn emit(report: &Report, outputs: &Outputs) -> Result<(), BoxError> {
    print_stdout(&rendered(
        report,
        outputs.stdout,
        stdout_style(outputs.stdout),
    ))
    .map_err(|e| format!("cannot write the report to stdout: {e}"))?;
    for (format, path) in &outputs.files {
        std::fs::write(path, rendered(report, *format, render::Style::default())).map_err(
            |source| WriteOutput {
                format: *format,
                path: path.display().to_string(),
                source,
            },
        )?;
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<ExitCode, BoxError> {
    let config = Config::from_args(args)?;
    logging::init(config.log_format);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let report = block_on(Runtime::OneThread, probe::run(&config))?;
    write_termination_message(&report);
    emit(&report, &config.outputs)?;
    Ok(exit_code(&report))
}

/// A saved report in other formats. Exits with the saved run's own code (the same
/// [`exit_code`] as `check`), so `render` in a pipeline gates as the run would have.
fn render_saved(args: RenderArgs) -> Result<ExitCode, BoxError> {
    use std::io::Read as _;
    logging::init(ecr_pull_probe::config::LogFormat::Text);
    // A report is a few MiB at most; a log around it is capped too, so a wrong file (a
    // layer, /dev/zero) is refused instead of read to the end.
    let limit = render::saved::MAX_SAVED_BYTES;
    let mut bytes = Vec::new();
    let name = args.report.display().to_string();
    let read = if args.report.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(&args.report).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("cannot read {name}: {e}"))?;
    let saved = render::saved::read(&bytes)
        .map_err(|e| format!("{name}: {}", ecr_pull_probe::error_chain(&e)))?;
    if let Some(w) = &saved.warning {
        tracing::warn!("{name}: {w}");
    }
    let report = saved.report;
    emit(
        &report,
        &Outputs::from_args(args.outputs, OutputFormat::Text)?,
    )?;
    Ok(exit_code(&report))
}

fn serve(args: ServeArgs) -> Result<ExitCode, BoxError> {
    let config = ServeConfig::from_args(args)?;
    logging::init_with_default(config.check.log_format, logging::SERVE_DEFAULT_FILTER);
    for w in &config.check.warnings {
        tracing::warn!("{w}");
    }
    block_on(
        Runtime::Pool,
        serve::serve(config.check, config.interval, config.listen, config.watch),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `diagnose`: the report is text by default, for the person at the terminal.
fn diagnose(args: diagnose::DiagnoseArgs) -> Result<ExitCode, BoxError> {
    logging::init(args.log_format);
    let d = diagnose::Diagnose::from_args(&args)?;
    let report = block_on(Runtime::OneThread, diagnose::run(&d))?;
    emit(&report, &args.outputs.outputs(OutputFormat::Text))?;
    Ok(exit_code(&report))
}

/// `gate`: JSON by default, and the Markdown view added to a GitHub job summary when there is
/// one (a courtesy: a summary that cannot be written is logged, the verdict stands).
fn gate(args: gate::GateArgs) -> Result<ExitCode, BoxError> {
    logging::init(args.log_format);
    let g = gate::Gate::from_args(&args)?;
    let report = block_on(Runtime::OneThread, gate::run(&g))?;
    emit(&report, &args.outputs.outputs(OutputFormat::Json))?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(
                    rendered(&report, OutputFormat::Markdown, render::Style::default()).as_bytes(),
                )
            });
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot add the report to the job summary");
        }
    }
    Ok(exit_code(&report))
}

fn main() -> ExitCode {
    // clap itself exits 2 on usage errors, 0 for --help and --version.
    let result = match Cli::parse_with_sources().command {
        Command::Check(args) => check(args),
        Command::Serve(args) => serve(args),
        Command::Render(args) => render_saved(args),
        Command::Diagnose(args) => diagnose(args),
        Command::Gate(args) => gate(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", ecr_pull_probe::error_chain(e.as_ref()));
        ExitCode::from(2)
    })
}
