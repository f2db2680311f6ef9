//! The binary: parse, run, print, exit. Exit codes are decided in one place, [`exit_code`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use ecr_pull_probe::config::{Cli, Command, Config, OutputFormat};
use ecr_pull_probe::report::{Report, Verdict};
use ecr_pull_probe::{logging, probe, render};

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

fn main() -> ExitCode {
    // clap exits 2 on usage errors, 0 for --help/--version.
    let Command::Check(args) = Cli::parse().command;
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            print_error(&e);
            return exit_code(None);
        }
    };
    logging::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            print_error(&e);
            return exit_code(None);
        }
    };
    match runtime.block_on(probe::run(&config)) {
        Ok(report) => {
            let out = match config.output {
                OutputFormat::Json => render::json(&report),
                OutputFormat::Text => render::text(&report),
            };
            println!("{out}");
            exit_code(Some(&report))
        }
        Err(e) => {
            print_error(&e);
            exit_code(None)
        }
    }
}
