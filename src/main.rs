//! The binary: parse, run, print, exit. Exit codes are decided in one place, [`exit_code`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use ecr_pull_probe::config::{
    CheckArgs, Cli, Command, Config, OutputFormat, ServeArgs, ServeConfig,
};
use ecr_pull_probe::report::{Report, Verdict};
use ecr_pull_probe::{logging, probe, render, serve};

/// 0: every image can be pulled. 1: at least one cannot (the gate says no). 2: the probe could
/// not run as asked (usage or configuration error).
fn exit_code(report: Option<&Report>) -> ExitCode {
    match report.map(|r| r.verdict) {
        Some(Verdict::Pass) => ExitCode::from(0),
        Some(Verdict::Fail) => ExitCode::from(1),
        Some(Verdict::Error) | None => ExitCode::from(2),
    }
}

/// Prints an error and its causes on stderr, as `error: a: b: c`.
fn print_error(err: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {}", ecr_pull_probe::error_chain(err));
}

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

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn check(args: CheckArgs) -> ExitCode {
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            print_error(&e);
            return exit_code(None);
        }
    };
    logging::init(config.log_format);
    let result = runtime()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        .and_then(|rt| {
            rt.block_on(probe::run(&config))
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        });
    match result {
        Ok(report) => {
            let out = match config.output {
                OutputFormat::Json => render::json(&report),
                OutputFormat::Text => render::text(&report),
            };
            println!("{out}");
            write_termination_message(&report);
            exit_code(Some(&report))
        }
        Err(e) => {
            print_error(e.as_ref());
            exit_code(None)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match ServeConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            print_error(&e);
            return exit_code(None);
        }
    };
    logging::init(config.check.log_format);
    let result = runtime()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        .and_then(|rt| {
            let served = rt.block_on(serve::serve(config.check, config.interval, config.listen));
            // The server has drained; idle pool threads must not hold the pod past SIGTERM.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            served.map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(e.as_ref());
            exit_code(None)
        }
    }
}

fn main() -> ExitCode {
    // clap exits 2 on usage errors, 0 for --help/--version.
    match Cli::parse().command {
        Command::Check(args) => check(args),
        Command::Serve(args) => serve(args),
    }
}
