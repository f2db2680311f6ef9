//! Logs: `tracing` to stderr, quiet by default (the probe's own warnings), levels from
//! `RUST_LOG` (e.g. `RUST_LOG=debug` for the dependencies' internals too).
//!
//! Crates below us log whole HTTP exchanges at debug and trace level, and those carry the web
//! identity token (the AssumeRoleWithWebIdentity body), the session credentials and the ECR
//! token. Their levels are therefore capped here whatever `RUST_LOG` says: a user asking for
//! `trace` gets the probe's own trace, not the wire.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, Targets};
use tracing_subscriber::prelude::*;

use crate::config::LogFormat;

/// Without `RUST_LOG`: warnings and errors of the probe itself, nothing of its dependencies.
pub const DEFAULT_FILTER: &str = "ecr_pull_probe=warn";

/// The most each wire-level crate may log.
const CEILINGS: &[(&str, LevelFilter)] = &[
    ("aws_smithy_runtime", LevelFilter::INFO),
    ("aws_smithy_runtime_api", LevelFilter::INFO),
    ("aws_smithy_http_client", LevelFilter::INFO),
    ("aws_smithy_http", LevelFilter::INFO),
    ("aws_smithy_types", LevelFilter::INFO),
    ("aws_sigv4", LevelFilter::INFO),
    ("aws_sdk_sts", LevelFilter::INFO),
    ("aws_sdk_ecr", LevelFilter::INFO),
    ("aws_config", LevelFilter::INFO),
    ("aws_runtime", LevelFilter::INFO),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("reqwest", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
    // kube-client logs the whole body of an answer it cannot decode at WARN, and that body
    // can be a Secret: its decode errors reach us as typed errors anyway, so it says nothing
    // below ERROR. tower and tower-http carry its requests.
    ("kube_client", LevelFilter::ERROR),
    ("kube", LevelFilter::ERROR),
    ("tower", LevelFilter::INFO),
    ("tower_http", LevelFilter::INFO),
];

/// Without `RUST_LOG`, for `serve`: also what the server does (the address it listens on,
/// one summary line per run), which a long-running process must tell at its default level;
/// the stages of each image stay at `RUST_LOG=ecr_pull_probe=info`.
pub const SERVE_DEFAULT_FILTER: &str =
    "ecr_pull_probe=warn,ecr_pull_probe::serve=info,ecr_pull_probe::watch=info";

pub fn init(format: LogFormat) {
    init_with_default(format, DEFAULT_FILTER)
}

/// [`init`] with another filter for when `RUST_LOG` is unset.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    // Quiet by default: the probe's own warnings only. The SDK warns about things a user
    // cannot act on (a region lookup from instance metadata, "config file overridden via
    // environment variable not found"); those appear once RUST_LOG asks for them.
    let env = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse_lossy(v),
        _ => EnvFilter::new(default_filter),
    };
    let ceiling = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CEILINGS.iter().copied());
    let filter = env.and(ceiling);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry();
    let _ = match format {
        LogFormat::Text => registry.with(fmt.with_filter(filter)).try_init(),
        LogFormat::Json => registry.with(fmt.json().with_filter(filter)).try_init(),
    };
}
