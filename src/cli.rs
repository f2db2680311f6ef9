//! The command line's top: the program, its subcommands and which values came from the
//! environment. Each subcommand's arguments live with what runs it ([`crate::config`] for check
//! and serve, [`crate::diagnose`], [`crate::gate`]); this module sits above them all, so none of
//! them imports it and the modes do not import each other through the config.

use std::collections::BTreeMap;

use clap::{Parser, Subcommand};

use crate::config::{CheckArgs, RenderArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "ecr-pull-probe",
    version,
    about = "Can this identity, from inside this cluster, really pull this image from Amazon ECR - and if not, exactly why?",
    after_help = "Exit codes: 0 every check passed; 1 the gate says no (an image cannot be pulled); 2 the probe could not run as asked; 3 inconclusive (a deadline, an unreachable host: nothing was refused). README, \"Exit codes\"."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses argv as [`clap::Parser::parse`] does (a usage error exits 2), and records which
    /// values came from the environment, so an error names the variable the user set rather
    /// than a flag they never typed.
    pub fn parse_with_sources() -> Cli {
        use clap::CommandFactory as _;
        let matches = Cli::command().get_matches();
        Cli::from_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// [`Cli::parse_with_sources`] of matches already made (tests use `try_get_matches_from`).
    pub fn from_matches(matches: &clap::ArgMatches) -> Result<Cli, clap::Error> {
        use clap::CommandFactory as _;
        use clap::FromArgMatches as _;
        let mut cli = Cli::from_arg_matches(matches)?;
        let Some((name, sub)) = matches.subcommand() else {
            return Ok(cli);
        };
        let command = Cli::command();
        let env_of = |id: &str| {
            command
                .find_subcommand(name)
                .and_then(|c| c.get_arguments().find(|a| a.get_id() == id))
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
        };
        let from_env: BTreeMap<String, String> = sub
            .ids()
            .filter(|id| {
                sub.value_source(id.as_str()) == Some(clap::parser::ValueSource::EnvVariable)
            })
            .filter_map(|id| env_of(id.as_str()).map(|e| (id.to_string(), e)))
            .collect();
        match &mut cli.command {
            Command::Check(a) => a.from_env = from_env,
            Command::Serve(a) => a.check.from_env = from_env,
            Command::Render(_) | Command::Diagnose(_) | Command::Gate(_) => {}
        }
        Ok(cli)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that each image can be pulled with this pod's identity; print a report.
    Check(CheckArgs),
    /// Run the checks on a schedule and serve /metrics, /report, /healthz and /readyz.
    Serve(ServeArgs),
    /// Print a saved JSON report in another format (text, markdown, junit).
    Render(RenderArgs),
    /// From outside the cluster: why does this pod (or workload) fail to pull? Reads the
    /// kubelet's messages, runs the probe as a Job on the pod's node under its
    /// ServiceAccount, reads the node DaemonSet's report, prints one report.
    Diagnose(crate::diagnose::DiagnoseArgs),
    /// Pre-rollout gate: the probe as a Job under the ServiceAccount a workload will use;
    /// prints its report and exits with its code.
    Gate(crate::gate::GateArgs),
}
