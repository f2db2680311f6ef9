//! ecr-pull-probe: can this identity, from inside this cluster, really pull this image from
//! Amazon ECR, and if not, exactly why?
//!
//! The stages of a run, one module each: [`identity`] (the projected web identity token),
//! [`sts`] (credentials and who they are), [`ecr`] (the registry's regional token) and
//! [`registry`] (a real manifest and layer pull, verified). [`diagnosis`] turns failures into
//! findings without I/O; [`report`] is the output's data; [`probe`] runs the stages.
#![forbid(unsafe_code)]

pub mod aws;
pub mod bounds;
pub mod catalogue;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod credential_provider;
pub mod diagnose;
pub mod diagnosis;
pub mod ecr_api;
pub mod ecr_token;
pub mod exit;
pub mod gate;
pub mod identity;
pub mod job;
pub mod jobcli;
pub mod keyring;
pub mod logging;
pub mod metrics;
pub mod node_cache;
pub mod paths;
pub mod probe;
pub mod pullsecret;
pub mod reference;
pub mod registry;
pub mod render;
pub mod report;
pub mod secret;
pub mod serve;
pub mod shard;
pub mod sts;
pub mod watch;
pub mod wire;
pub mod workload;

/// An error and its causes as one line, `a: b: c`, for evidence and for stderr.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
