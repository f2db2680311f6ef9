//! The wire types of `/report` in watch mode (`watch/1.1`), documented in docs/watch.md and
//! described by `schema/watch.schema.json`; built from the schedule's state, pure.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::schedule::{Availability, State};
use crate::report::IdentityReport;

/// The version of `/report` in watch mode (documented in docs/watch.md).
/// 1.1 added `shard`.
pub const WATCH_REPORT_VERSION: &str = "watch/1.1";

/// `/report` in watch mode.
#[derive(Serialize)]
pub struct WatchReport<'a> {
    pub schema_version: &'static str,
    pub generated_at: i64,
    pub interval_seconds: u64,
    /// Which namespaces this replica checks: shard `index` of `total` (0 of 1 unsharded).
    pub shard: ShardOut,
    pub identity: Option<&'a IdentityReport>,
    pub summary: Summary,
    pub workloads: Vec<WorkloadOut<'a>>,
    pub checks: BTreeMap<&'a str, CheckOut<'a>>,
}

#[derive(Serialize)]
pub struct ShardOut {
    pub index: u32,
    pub total: u32,
}

#[derive(Serialize, Default)]
pub struct Summary {
    pub workloads: usize,
    pub containers: usize,
    pub available: usize,
    pub unavailable: usize,
    pub unknown: usize,
    /// Checked, but the kubelet's answer depends on node credentials a cluster-wide watcher
    /// cannot see (its pull secrets do not pull).
    pub inconclusive: usize,
    pub checks: usize,
}

#[derive(Serialize)]
pub struct WorkloadOut<'a> {
    pub namespace: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub service_account: &'a str,
    /// `pod`, `serviceaccount`, or null when none: the node's credentials then.
    pub pull_secrets_from: Option<&'static str>,
    pub containers: Vec<ContainerOut<'a>>,
}

#[derive(Serialize)]
pub struct ContainerOut<'a> {
    pub container: &'a str,
    pub image: &'a str,
    pub init: bool,
    pub status: Availability,
    pub check: Option<&'a str>,
    pub error: Option<&'a str>,
    pub codes: &'a [&'static str],
}

#[derive(Serialize)]
pub struct CheckOut<'a> {
    pub checked_at: i64,
    pub failures: u32,
    /// The image's report, kept as its JSON.
    pub result: &'a serde_json::value::RawValue,
}

impl Summary {
    /// Counts one container; `invalid` counts as unavailable (it will never pull as written).
    fn count(&mut self, status: Availability) {
        self.containers += 1;
        match status {
            Availability::Available => self.available += 1,
            Availability::Unknown => self.unknown += 1,
            Availability::Inconclusive => self.inconclusive += 1,
            Availability::Unavailable | Availability::Invalid => self.unavailable += 1,
        }
    }
}

/// The `/report` document of `state`.
pub fn report(state: &State, interval: Duration, now: i64) -> WatchReport<'_> {
    let mut summary = Summary {
        workloads: state.rows.len(),
        checks: state.checks.len(),
        ..Default::default()
    };
    let mut workloads = Vec::new();
    for (k, (from, rows)) in &state.rows {
        let Some(w) = state.workloads.all.get(k) else {
            continue;
        };
        let containers = rows
            .iter()
            .map(|row| {
                let (status, r) = state.status_of(row);
                summary.count(status);
                ContainerOut {
                    container: &row.container,
                    image: &row.image,
                    init: row.init,
                    status,
                    check: row.check.as_ref().ok().map(String::as_str),
                    error: row.check.as_ref().err().map(String::as_str),
                    codes: r.map(|a| a.codes.as_slice()).unwrap_or_default(),
                }
            })
            .collect();
        workloads.push(WorkloadOut {
            namespace: &k.namespace,
            kind: &k.kind,
            name: &k.name,
            service_account: &w.service_account,
            pull_secrets_from: *from,
            containers,
        });
    }
    let checks = state
        .checks
        .iter()
        .filter_map(|(id, c)| {
            Some((
                id.as_str(),
                CheckOut {
                    checked_at: c.checked_at?,
                    failures: c.failures,
                    result: &c.result.as_deref()?.json,
                },
            ))
        })
        .collect();
    WatchReport {
        schema_version: WATCH_REPORT_VERSION,
        generated_at: now,
        interval_seconds: interval.as_secs(),
        shard: ShardOut {
            index: state.shard.index,
            total: state.shard.total,
        },
        identity: state.identity.as_ref(),
        summary,
        workloads,
        checks,
    }
}

/// `/report` as served. `last_len` is the length of the one before (0 for none): the buffer is
/// sized from it, so a report about as long as the last is written into one allocation, not
/// grown by doubling through 1, 2, 4, 8 and 16 MiB copies at 10,000 workloads (9.3 MB), each
/// briefly beside the one it replaces and the report still held.
pub fn report_json(state: &State, interval: Duration, now: i64, last_len: usize) -> String {
    let mut json = Vec::with_capacity(last_len + last_len / 16);
    // Writing JSON into a Vec fails only if a Serialize impl does, and ours are derived.
    if serde_json::to_writer(&mut json, &report(state, interval, now)).is_err() {
        json.clear();
    }
    // Held until the next change: not with the slack of a buffer that grew past it.
    json.shrink_to_fit();
    // serde_json writes UTF-8 only.
    String::from_utf8(json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_written_as_before_the_enum() {
        for (a, want) in [
            (Availability::Available, "available"),
            (Availability::Unavailable, "unavailable"),
            (Availability::Inconclusive, "inconclusive"),
            (Availability::Unknown, "unknown"),
            (Availability::Invalid, "invalid"),
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), want);
        }
    }

    /// The schema beside the code says the same version and the same outcomes.
    #[test]
    fn the_watch_schema_has_this_version_and_these_outcomes() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/watch.schema.json")).unwrap();
        assert_eq!(
            schema["properties"]["schema_version"]["const"], WATCH_REPORT_VERSION,
            "update schema/watch.schema.json"
        );
        let all = [
            Availability::Available,
            Availability::Unavailable,
            Availability::Inconclusive,
            Availability::Unknown,
            Availability::Invalid,
        ];
        assert_eq!(
            schema["$defs"]["availability"]["enum"],
            serde_json::to_value(all).unwrap()
        );
    }

    #[test]
    fn an_empty_state_is_a_valid_empty_report() {
        let v: serde_json::Value = serde_json::from_str(&report_json(
            &State::default(),
            Duration::from_secs(60),
            7,
            0,
        ))
        .unwrap();
        assert_eq!(v["schema_version"], "watch/1.1");
        assert_eq!(v["shard"], serde_json::json!({"index": 0, "total": 1}));
        assert_eq!(v["interval_seconds"], 60);
        assert_eq!(v["generated_at"], 7);
        assert!(v["identity"].is_null());
        assert_eq!(v["workloads"], serde_json::json!([]));
        assert_eq!(v["checks"], serde_json::json!({}));
        assert_eq!(v["summary"]["containers"], 0);
    }
}
