//! `serve --watch`: every workload of the watched namespaces, all the time. Deployments,
//! StatefulSets, DaemonSets, CronJobs, Jobs and bare Pods are listed and watched with kube's
//! runtime watcher (a dropped watch resumes, a re-list replaces what was known); each
//! (workload, container, image) is checked with the credentials the kubelet would use for it
//! (its pull secrets, else its ServiceAccount's; the node provider where configured), through
//! the same paths as `check`, with the probe's own identity as context.
//!
//! Cheap at scale: one check per distinct (image, credentials) per interval, whatever the
//! number of workloads sharing it; the ServiceAccounts and Secrets read once per interval; a
//! new or changed workload's new (image, credentials) checked on the next tick (about a
//! second) and unknown until then; a failing check retried sooner than a passing one, with a
//! bounded backoff; checks and series no workload uses any more dropped.
//!
//! The rooms: [`source`] (watchers -> workload changes), [`schedule`] (rows, checks, due
//! times, with the credentials reader and the check handed in), [`wire`] (the `/report`
//! types); this module connects them to the cluster, the probe and the metrics.

pub mod schedule;
pub mod source;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{Cluster, PullSecretReader};
use crate::config::{Config, WatchConfig};
use crate::pullsecret::SecretSet;
use crate::reference::ImageRef;
use crate::report::Workload;

pub use schedule::{
    Availability, Check, CheckState, MAX_CHECKS_PER_NAMESPACE, PullSecrets, Row, State, check_id,
};
pub use source::{Change, WorkloadKey, Workloads, start_watchers};
pub use wire::{WATCH_REPORT_VERSION, report_json};

/// How often the scheduler looks for due checks and changed workloads.
const TICK: Duration = Duration::from_secs(1);

/// Watch reads pull secrets through the one reader `check` uses, with its cache: each
/// ServiceAccount and Secret once per interval; `None` when there are none (the node's
/// credentials then).
impl PullSecrets for PullSecretReader {
    async fn for_workload(&mut self, w: &Workload) -> Option<(SecretSet, &'static str)> {
        let (set, from) = self.read(w).await;
        (!set.is_empty()).then_some((set, from))
    }
}

/// The real check: `probe::run_checks`, one identity resolution and ECR token per region for
/// all the due items, `config.concurrency` at a time, tokens and logins kept across runs.
struct ProbeCheck<'a> {
    config: &'a Config,
    reuse: &'a crate::probe::Reuse,
}

impl Check for ProbeCheck<'_> {
    type Error = crate::probe::SetupError;
    async fn run(
        &self,
        items: &[(ImageRef, Option<std::sync::Arc<SecretSet>>)],
    ) -> Result<crate::report::Report, Self::Error> {
        Box::pin(crate::probe::run_checks(self.config, items, self.reuse)).await
    }
}

/// The metrics of every watched container, from the state.
fn publish_metrics(state: &State, metrics: &crate::metrics::Metrics) {
    let mut expiry: BTreeMap<String, i64> = BTreeMap::new();
    for c in state.checks.values() {
        let exp = c.result.as_ref().and_then(|r| r.password_expires_at);
        if let Some(exp) = exp {
            let e = expiry.entry(c.image.original.clone()).or_insert(exp);
            *e = (*e).min(exp);
        }
    }
    let rows = state.rows.iter().flat_map(|(k, (_, rows))| {
        rows.iter().map(move |row| {
            let (status, r) = state.status_of(row);
            crate::metrics::WorkloadVerdict {
                namespace: &k.namespace,
                kind: &k.kind,
                name: &k.name,
                container: &row.container,
                image: &row.image,
                available: status.metric(),
                codes: r
                    .map(|a| a.codes.iter().map(|c| c.to_string()).collect())
                    .unwrap_or_default(),
            }
        })
    });
    metrics.observe_workloads(rows, &expiry);
}

/// Connects through [`Cluster`] as every other mode does, trying again every `retry` (a
/// missing kubeconfig at start may be mounted later) until it can.
async fn connect(retry: Duration) -> Cluster {
    loop {
        match Cluster::connect(None).await {
            Ok(c) => return c,
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "cannot connect to the Kubernetes API")
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// The scheduler: applies the watchers' changes, works out credentials, runs what is due,
/// publishes metrics and `/report`. Runs until the task is aborted.
pub async fn run(
    config: Config,
    interval: Duration,
    watch: WatchConfig,
    metrics: impl Fn(&State, Option<&crate::report::Report>, String) + Send,
) {
    let cluster = connect(watch.retry).await;
    let client = cluster.client();
    let mut changes = start_watchers(&client, &watch, &cluster.namespace);
    let mut creds = PullSecretReader::cached(client.clone());
    let mut state = State {
        shard: watch.shard,
        ..State::default()
    };
    // ECR tokens and registry logins, kept from run to run until half their life.
    let reuse = crate::probe::Reuse::across_runs(interval);
    let check = ProbeCheck {
        config: &config,
        reuse: &reuse,
    };
    let mut next_round = Instant::now() + interval;
    let mut report_len = 0;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut changed = false;
        while let Ok(c) = changes.try_recv() {
            // Another replica's namespaces are not ours to check or export.
            if let Some(c) = c.for_shard(watch.shard) {
                changed |= state.workloads.apply(c);
            }
        }
        let now = Instant::now();
        if now >= next_round {
            // Once per interval: Secrets and ServiceAccounts read afresh.
            creds.clear();
            state.workloads.dirty = state.workloads.all.keys().cloned().collect();
            next_round = now + interval;
        }
        if !state.workloads.dirty.is_empty() || !state.workloads.removed.is_empty() {
            state.refresh(&mut creds, now).await;
            changed = true;
        }
        let report = state.run_due(&check, interval).await;
        if report.is_some() || changed {
            let json = report_json(&state, interval, crate::probe::unix_now(), report_len);
            report_len = json.len();
            metrics(&state, report.as_ref(), json);
        }
    }
}

/// What serve does with each update: the metrics and the JSON of `/report`.
pub fn publish(
    state: &State,
    report: Option<&crate::report::Report>,
    metrics: &crate::metrics::Metrics,
) {
    let now = crate::probe::unix_now() as f64;
    match report {
        Some(r) => metrics.observe_watch_run(r, now),
        None if state.checks.is_empty() => metrics.touch(now),
        None => {}
    }
    publish_metrics(state, metrics);
}
