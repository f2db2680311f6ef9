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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Secret as K8sSecret, ServiceAccount};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cluster::{
    ServiceAccountRead, WorkloadKind, add_pull_secret, effective_pull_secrets, workload_from_spec,
};
use crate::config::{Config, WatchConfig};
use crate::diagnosis;
use crate::pullsecret::SecretSet;
use crate::reference::ImageRef;
use crate::report::{IdentityReport, ImageReport, Verdict, Workload};

/// The version of `/report` in watch mode (documented in docs/watch.md).
pub const WATCH_REPORT_VERSION: &str = "watch/1.0";

/// How often the scheduler looks for due checks and changed workloads.
const TICK: Duration = Duration::from_secs(1);
/// Most distinct (image, credentials) one namespace's workloads may have checked: each result
/// is bounded (`ImageReport::bound`), so this bounds what one namespace's editor can make the
/// watcher hold. Containers past it are `invalid` in `/report`, with the reason.
pub const MAX_CHECKS_PER_NAMESPACE: usize = 256;
/// Counts `id` against `namespace`'s [`MAX_CHECKS_PER_NAMESPACE`]; a check it already uses
/// is free.
fn admit(
    per_ns: &mut HashMap<String, BTreeSet<String>>,
    namespace: &str,
    id: &str,
) -> Result<(), String> {
    let ids = per_ns.entry(namespace.to_string()).or_default();
    if !ids.contains(id) && ids.len() >= MAX_CHECKS_PER_NAMESPACE {
        return Err(format!(
            "not checked: namespace {namespace} already uses {MAX_CHECKS_PER_NAMESPACE} distinct (image, credentials), the most one namespace may"
        ));
    }
    ids.insert(id.to_string());
    Ok(())
}

/// The first retry of a failing check; doubled per failure, never past the interval.
const FAIL_RETRY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl WorkloadKey {
    fn of(w: &Workload) -> WorkloadKey {
        WorkloadKey {
            namespace: w.namespace.clone(),
            kind: w.kind.clone(),
            name: w.name.clone(),
        }
    }
}

/// What the watchers tell the scheduler.
#[derive(Debug)]
pub enum Change {
    Upsert(Workload),
    Delete(WorkloadKey),
    /// A (re)list of `kind` in `namespace` (`None`: all) finished: exactly these exist.
    Replace {
        kind: String,
        namespace: Option<String>,
        workloads: Vec<Workload>,
    },
    /// A watch failed (the watcher retries by itself): why, for `/readyz` until the first
    /// list has come in.
    Failed(String),
}

/// A workload's pod template, or `None` when the object is not a workload of its own: a pod
/// some controller owns (its owner is watched), a Job a CronJob made.
fn template<K: Resource>(kind: WorkloadKind, obj: &K, spec: Option<&PodSpec>) -> Option<Workload> {
    let owners = obj.meta().owner_references.as_deref().unwrap_or_default();
    let owned = match kind {
        WorkloadKind::Pod => !owners.is_empty(),
        WorkloadKind::Job => owners.iter().any(|o| o.kind == "CronJob"),
        _ => false,
    };
    if owned {
        return None;
    }
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    let name = obj.meta().name.clone().unwrap_or_default();
    Some(workload_from_spec(kind, &ns, &name, spec?))
}

fn key_of<K: Resource>(kind: WorkloadKind, obj: &K) -> WorkloadKey {
    WorkloadKey {
        namespace: obj.meta().namespace.clone().unwrap_or_default(),
        kind: kind.to_string(),
        name: obj.meta().name.clone().unwrap_or_default(),
    }
}

/// One watcher: `kind` in one namespace (or all), its events turned into [`Change`]s.
fn spawn_watcher<K>(
    api: Api<K>,
    cfg: watcher::Config,
    kind: WorkloadKind,
    namespace: Option<String>,
    extract: fn(&K) -> Option<&PodSpec>,
    tx: mpsc::Sender<Change>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, cfg).default_backoff().boxed();
        let mut listing: Vec<Workload> = Vec::new();
        while let Some(event) = events.next().await {
            let change = match event {
                Ok(Event::Init) => {
                    listing.clear();
                    continue;
                }
                Ok(Event::InitApply(o)) => {
                    listing.extend(template(kind, &o, extract(&o)));
                    continue;
                }
                Ok(Event::InitDone) => Change::Replace {
                    kind: kind.to_string(),
                    namespace: namespace.clone(),
                    workloads: std::mem::take(&mut listing),
                },
                Ok(Event::Apply(o)) => match template(kind, &o, extract(&o)) {
                    Some(w) => Change::Upsert(w),
                    None => Change::Delete(key_of(kind, &o)),
                },
                Ok(Event::Delete(o)) => Change::Delete(key_of(kind, &o)),
                Err(e) => {
                    // The watcher backs off and resumes (or re-lists) by itself.
                    let error = crate::error_chain(&e);
                    tracing::warn!(%kind, namespace = namespace.as_deref().unwrap_or("*"), %error, "watch failed; retrying");
                    Change::Failed(format!("watching {kind}s: {error}"))
                }
            };
            if tx.send(change).await.is_err() {
                return;
            }
        }
    });
}

/// Starts the watchers of the six kinds over the namespaces asked for.
pub fn start_watchers(
    client: &Client,
    watch: &WatchConfig,
    default_ns: &str,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(1024);
    let mut cfg = watcher::Config::default();
    if let Some(sel) = &watch.selector {
        cfg = cfg.labels(sel);
    }
    let scopes: Vec<Option<String>> = match &watch.namespaces {
        None => vec![None],
        Some(ns) if ns.is_empty() => vec![Some(default_ns.to_string())],
        Some(ns) => ns.iter().cloned().map(Some).collect(),
    };
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    for ns in scopes {
        let c = || cfg.clone();
        spawn_watcher::<Deployment>(
            api(client, &ns),
            c(),
            WorkloadKind::Deployment,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<StatefulSet>(
            api(client, &ns),
            c(),
            WorkloadKind::StatefulSet,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<DaemonSet>(
            api(client, &ns),
            c(),
            WorkloadKind::DaemonSet,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<CronJob>(
            api(client, &ns),
            c(),
            WorkloadKind::CronJob,
            ns.clone(),
            |o| {
                o.spec
                    .as_ref()?
                    .job_template
                    .spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()
            },
            tx.clone(),
        );
        spawn_watcher::<Job>(
            api(client, &ns),
            c(),
            WorkloadKind::Job,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<Pod>(
            api(client, &ns),
            c(),
            WorkloadKind::Pod,
            ns.clone(),
            |o| o.spec.as_ref(),
            tx.clone(),
        );
    }
    rx
}

/// The known workloads, kept current by [`Change`]s; `dirty` are those whose credentials
/// and checks must be worked out again.
#[derive(Default)]
pub struct Workloads {
    pub all: BTreeMap<WorkloadKey, Workload>,
    pub dirty: BTreeSet<WorkloadKey>,
    pub removed: BTreeSet<WorkloadKey>,
    /// Why no list has come in yet (the API refused or did not answer); cleared by the first
    /// list, and never set again after it: a later watch error is the watcher's to retry.
    pub api_problem: Option<String>,
    listed: bool,
}

impl Workloads {
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Failed(e) => {
                if !self.listed {
                    self.api_problem = Some(e);
                }
            }
            Change::Upsert(w) => self.upsert(w),
            Change::Delete(k) => {
                if self.all.remove(&k).is_some() {
                    self.removed.insert(k.clone());
                }
                self.dirty.remove(&k);
            }
            Change::Replace {
                kind,
                namespace,
                workloads,
            } => {
                self.listed = true;
                self.api_problem = None;
                let keep: BTreeSet<WorkloadKey> = workloads.iter().map(WorkloadKey::of).collect();
                let gone: Vec<WorkloadKey> = self
                    .all
                    .keys()
                    .filter(|k| {
                        k.kind == kind && namespace.as_ref().is_none_or(|n| *n == k.namespace)
                    })
                    .filter(|k| !keep.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    self.apply(Change::Delete(k));
                }
                for w in workloads {
                    self.upsert(w);
                }
            }
        }
    }

    fn upsert(&mut self, w: Workload) {
        let key = WorkloadKey::of(&w);
        if self.all.get(&key) != Some(&w) {
            self.dirty.insert(key.clone());
            self.all.insert(key, w);
        }
    }
}

/// The credentials a workload's pods get, read through the API once per interval.
pub struct Credentials<'c> {
    client: &'c Client,
    service_accounts: HashMap<(String, String), ServiceAccountState>,
    secrets: HashMap<(String, String), SecretRead>,
    /// API reads made (for the logs and the benchmark).
    pub reads: u64,
}

#[derive(Clone)]
enum ServiceAccountState {
    Found(Vec<String>),
    Missing,
    Failed(crate::report::Finding),
}

#[derive(Clone)]
enum SecretRead {
    Found(Box<K8sSecret>),
    Missing,
    Failed(String),
}

impl<'c> Credentials<'c> {
    pub fn new(client: &'c Client) -> Self {
        Credentials {
            client,
            service_accounts: HashMap::new(),
            secrets: HashMap::new(),
            reads: 0,
        }
    }

    /// Forget what was read, so changed Secrets and ServiceAccounts are seen.
    pub fn clear(&mut self) {
        self.service_accounts.clear();
        self.secrets.clear();
    }

    /// The pull secrets the kubelet would have for the workload's pods, by the same rules as
    /// a single check (`cluster::effective_pull_secrets`, `cluster::add_pull_secret`);
    /// `None` when there are none (the node's credentials then); with them, who listed them.
    pub async fn for_workload(&mut self, w: &Workload) -> Option<(SecretSet, &'static str)> {
        let ns = w.namespace.clone();
        let sa_key = (ns.clone(), w.service_account.clone());
        if !self.service_accounts.contains_key(&sa_key) {
            self.reads += 1;
            let read = match Api::<ServiceAccount>::namespaced(self.client.clone(), &ns)
                .get(&w.service_account)
                .await
            {
                Ok(sa) => ServiceAccountState::Found(
                    sa.image_pull_secrets
                        .iter()
                        .flatten()
                        .map(|r| r.name.clone())
                        .collect(),
                ),
                Err(kube::Error::Api(s)) if s.code == 404 => ServiceAccountState::Missing,
                Err(e) => ServiceAccountState::Failed(diagnosis::cluster_read_failed(
                    "ServiceAccount",
                    &ns,
                    &w.service_account,
                    &crate::error_chain(&e),
                )),
            };
            self.service_accounts.insert(sa_key.clone(), read);
        }
        let mut set = SecretSet::default();
        let sa = match &self.service_accounts[&sa_key] {
            ServiceAccountState::Found(names) => ServiceAccountRead::Found(names.clone()),
            ServiceAccountState::Missing => ServiceAccountRead::Missing,
            ServiceAccountState::Failed(f) => ServiceAccountRead::Failed(f.clone()),
        };
        let (names, from) = effective_pull_secrets(w, sa, &mut set);
        for name in names {
            let key = (ns.clone(), name.clone());
            if !self.secrets.contains_key(&key) {
                self.reads += 1;
                let read = match Api::<K8sSecret>::namespaced(self.client.clone(), &ns)
                    .get(&name)
                    .await
                {
                    Ok(secret) => SecretRead::Found(Box::new(secret)),
                    Err(kube::Error::Api(s)) if s.code == 404 => SecretRead::Missing,
                    Err(e) => SecretRead::Failed(crate::error_chain(&e)),
                };
                self.secrets.insert(key.clone(), read);
            }
            match self.secrets[&key].clone() {
                SecretRead::Found(secret) => {
                    add_pull_secret(&mut set, &format!("secret/{ns}/{name}"), *secret)
                }
                SecretRead::Missing => set
                    .findings
                    .push(diagnosis::pull_secret_missing(&ns, &name, from)),
                SecretRead::Failed(detail) => set.findings.push(diagnosis::cluster_read_failed(
                    "Secret", &ns, &name, &detail,
                )),
            }
        }
        (!set.is_empty()).then_some((set, from))
    }
}

/// Identifies a check: the image as pulled and what the credentials hold. The id is published
/// in `/report` beside every other input (image, sources, keys, usernames), so it must not be
/// computable from them and a guessed password: an unkeyed hash of `base64(user:password)` was
/// an offline password oracle (issue 23). It is HMAC-SHA256 under a key drawn at start from
/// the system's random source and never shown: stable for the process (the schedule needs
/// that), unlinkable across restarts, and nothing an observer can test a guess against.
pub fn check_id(image: &ImageRef, set: Option<&SecretSet>) -> String {
    let mut h = IdMac::new();
    image.normalized().hash(&mut h);
    if let Some(set) = set {
        set.sources.hash(&mut h);
        for e in &set.entries {
            (
                &e.source,
                &e.key,
                &e.username,
                e.basic.expose(),
                e.ecr_password_expiration,
            )
                .hash(&mut h);
        }
        for (source, m) in &set.malformed {
            (source, m.to_string()).hash(&mut h);
        }
        for f in set.findings.iter().chain(&set.blockers) {
            (f.code.name(), &f.summary).hash(&mut h);
        }
        for k in &set.skipped_keys {
            (&k.source, &k.key).hash(&mut h);
        }
    }
    format!("{:016x}", h.finish())
}

/// The per-process key of [`check_id`].
fn id_key() -> &'static ring::hmac::Key {
    static KEY: std::sync::OnceLock<ring::hmac::Key> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        // The system's random source failing is not something a probe can work around;
        // ring's generate only fails there.
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .expect("the system's random source works")
    })
}

/// A [`Hasher`] that feeds an HMAC, so `check_id` keeps hashing the same fields with `Hash`.
struct IdMac(ring::hmac::Context);

impl IdMac {
    fn new() -> Self {
        IdMac(ring::hmac::Context::with_key(id_key()))
    }
}

impl Hasher for IdMac {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let tag = self.0.clone().sign();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_be_bytes(first)
    }
}

/// One container of a workload and what it is checked as.
#[derive(Debug, Clone)]
pub struct Row {
    pub container: String,
    pub image: String,
    pub init: bool,
    /// The check answering for it; `Err` when the image is not a valid reference.
    pub check: Result<String, String>,
}

/// A distinct (image, credentials) and its last answer.
pub struct CheckState {
    pub image: ImageRef,
    pub secrets: Option<SecretSet>,
    pub result: Option<Arc<ImageReport>>,
    pub checked_at: Option<i64>,
    pub next_due: Instant,
    pub failures: u32,
}

impl CheckState {
    /// When to check again: a pass after the interval; a failure sooner, backing off.
    pub fn record(&mut self, result: ImageReport, now: Instant, at: i64, interval: Duration) {
        let passed = result.verdict == Verdict::Pass;
        self.failures = if passed { 0 } else { self.failures + 1 };
        let delay = if passed {
            interval
        } else {
            FAIL_RETRY
                .saturating_mul(1 << (self.failures - 1).min(16))
                .min(interval)
        };
        self.next_due = now + delay;
        self.result = Some(Arc::new(result));
        self.checked_at = Some(at);
    }
}

/// Everything the scheduler knows: workloads, their rows, the checks.
#[derive(Default)]
pub struct State {
    pub workloads: Workloads,
    pub rows: BTreeMap<WorkloadKey, (Option<&'static str>, Vec<Row>)>,
    pub checks: BTreeMap<String, CheckState>,
    pub identity: Option<IdentityReport>,
    pub batches: u64,
    pub checks_run: u64,
}

impl State {
    /// Works out the rows of the dirty workloads (reading credentials), drops what deleted
    /// workloads left, and the checks nobody uses.
    pub async fn refresh(&mut self, creds: &mut Credentials<'_>, now: Instant) {
        for k in std::mem::take(&mut self.workloads.removed) {
            self.rows.remove(&k);
        }
        let dirty = std::mem::take(&mut self.workloads.dirty);
        // The distinct checks each namespace's other workloads use: one namespace's editor
        // cannot make the watcher hold more than MAX_CHECKS_PER_NAMESPACE results (issue 23).
        let mut per_ns: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (k, (_, rows)) in &self.rows {
            if !dirty.contains(k) {
                let ids = rows.iter().filter_map(|r| r.check.as_ref().ok().cloned());
                per_ns.entry(k.namespace.clone()).or_default().extend(ids);
            }
        }
        for k in dirty {
            let Some(w) = self.workloads.all.get(&k) else {
                continue;
            };
            let (set, from) = match creds.for_workload(w).await {
                Some((set, from)) => (Some(set), Some(from)),
                None => (None, None),
            };
            let mut rows = Vec::new();
            for c in &w.containers {
                let check = match c.image.parse::<ImageRef>() {
                    Ok(img) => 'check: {
                        let id = check_id(&img, set.as_ref());
                        if let Err(e) = admit(&mut per_ns, &k.namespace, &id) {
                            break 'check Err(e);
                        }
                        self.checks.entry(id.clone()).or_insert_with(|| CheckState {
                            image: img,
                            secrets: set.clone(),
                            result: None,
                            checked_at: None,
                            next_due: now,
                            failures: 0,
                        });
                        Ok(id)
                    }
                    Err(e) => Err(e.to_string()),
                };
                rows.push(Row {
                    container: c.container.clone(),
                    image: c.image.clone(),
                    init: c.init,
                    check,
                });
            }
            self.rows.insert(k, (from, rows));
        }
        let used: BTreeSet<&String> = self
            .rows
            .values()
            .flat_map(|(_, rows)| rows.iter().filter_map(|r| r.check.as_ref().ok()))
            .collect();
        self.checks.retain(|id, _| used.contains(id));
    }

    /// The checks due now.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.checks
            .iter()
            .filter(|(_, c)| c.next_due <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// `/report` in watch mode.
#[derive(Serialize)]
pub struct WatchReport<'a> {
    pub schema_version: &'static str,
    pub generated_at: i64,
    pub interval_seconds: u64,
    pub identity: Option<&'a IdentityReport>,
    pub summary: Summary,
    pub workloads: Vec<WorkloadOut<'a>>,
    pub checks: BTreeMap<&'a str, CheckOut<'a>>,
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
    /// `available`, `unavailable`, `inconclusive` (the kubelet would go on to node
    /// credentials), `unknown` (not checked yet) or `invalid` (not a reference).
    pub status: &'static str,
    pub check: Option<&'a str>,
    pub error: Option<&'a str>,
    pub codes: Vec<String>,
}

#[derive(Serialize)]
pub struct CheckOut<'a> {
    pub checked_at: i64,
    pub failures: u32,
    pub result: &'a ImageReport,
}

/// A row's status and finding codes.
pub fn status_of(state: &State, row: &Row) -> (&'static str, Option<Arc<ImageReport>>) {
    match &row.check {
        Err(_) => ("invalid", None),
        Ok(id) => match state.checks.get(id).and_then(|c| c.result.clone()) {
            None => ("unknown", None),
            Some(r) if r.verdict == Verdict::Pass => ("available", Some(r)),
            // The kubelet would go on to node credentials a cluster-wide watcher cannot see.
            Some(r) if r.verdict == Verdict::Inconclusive => ("inconclusive", Some(r)),
            Some(r) => ("unavailable", Some(r)),
        },
    }
}

pub fn codes(r: &ImageReport) -> Vec<String> {
    let codes: BTreeSet<String> = r
        .all_findings()
        .map(|f| f.code.name().to_string())
        .collect();
    codes.into_iter().collect()
}

pub fn report_json(state: &State, interval: Duration, now: i64) -> String {
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
                let (status, r) = status_of(state, row);
                summary.containers += 1;
                match status {
                    "available" => summary.available += 1,
                    "unknown" => summary.unknown += 1,
                    "inconclusive" => summary.inconclusive += 1,
                    _ => summary.unavailable += 1,
                }
                ContainerOut {
                    container: &row.container,
                    image: &row.image,
                    init: row.init,
                    status,
                    check: row.check.as_ref().ok().map(String::as_str),
                    error: row.check.as_ref().err().map(String::as_str),
                    codes: r.as_deref().map(codes).unwrap_or_default(),
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
                    result: c.result.as_deref()?,
                },
            ))
        })
        .collect();
    let out = WatchReport {
        schema_version: WATCH_REPORT_VERSION,
        generated_at: now,
        interval_seconds: interval.as_secs(),
        identity: state.identity.as_ref(),
        summary,
        workloads,
        checks,
    };
    serde_json::to_string(&out).unwrap_or_default()
}

/// Runs the due checks as one run: one identity resolution and ECR token per region for
/// them all, `config.concurrency` at a time.
pub async fn run_due(
    state: &mut State,
    config: &Config,
    interval: Duration,
    reuse: &crate::probe::Reuse,
) -> Option<crate::report::Report> {
    let due = state.due(Instant::now());
    if due.is_empty() {
        return None;
    }
    let items: Vec<(ImageRef, Option<SecretSet>)> = due
        .iter()
        .map(|id| {
            let c = &state.checks[id];
            (c.image.clone(), c.secrets.clone())
        })
        .collect();
    let report = match Box::pin(crate::probe::run_checks(config, &items, reuse)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %crate::error_chain(&e), "checks could not start");
            // Try again after the first retry delay, not at once.
            let later = Instant::now() + FAIL_RETRY.min(interval);
            for id in &due {
                if let Some(c) = state.checks.get_mut(id) {
                    c.next_due = later;
                }
            }
            return None;
        }
    };
    let (now, at) = (Instant::now(), crate::probe::unix_now());
    for (id, r) in due.iter().zip(report.images.iter()) {
        if let Some(c) = state.checks.get_mut(id) {
            c.record(r.clone(), now, at, interval);
        }
    }
    state.batches += 1;
    state.checks_run += due.len() as u64;
    state.identity = Some(report.identity.clone());
    tracing::info!(
        checks = due.len(),
        failures = report
            .images
            .iter()
            .filter(|i| i.verdict != Verdict::Pass)
            .count(),
        duration_ms = report.duration_ms,
        "checks finished"
    );
    Some(report)
}

/// The metrics of every watched container, from the state.
fn publish_metrics(state: &State, metrics: &crate::metrics::Metrics) {
    let mut expiry: BTreeMap<String, i64> = BTreeMap::new();
    for c in state.checks.values() {
        let exp = c
            .result
            .as_ref()
            .and_then(|r| r.paths.pull_secrets.as_ref())
            .and_then(|p| p.password_expires_at);
        if let Some(exp) = exp {
            let e = expiry.entry(c.image.original.clone()).or_insert(exp);
            *e = (*e).min(exp);
        }
    }
    let rows = state.rows.iter().flat_map(|(k, (_, rows))| {
        rows.iter().map(move |row| {
            let (status, r) = status_of(state, row);
            crate::metrics::WorkloadVerdict {
                namespace: &k.namespace,
                kind: &k.kind,
                name: &k.name,
                container: &row.container,
                image: &row.image,
                available: match status {
                    "unknown" | "inconclusive" => None,
                    s => Some(s == "available"),
                },
                codes: r.as_deref().map(codes).unwrap_or_default(),
            }
        })
    });
    metrics.observe_workloads(rows, &expiry);
}

/// The scheduler: applies the watchers' changes, works out credentials, runs what is due,
/// publishes metrics and `/report`. Runs until the task is aborted.
pub async fn run(
    config: Config,
    interval: Duration,
    watch: WatchConfig,
    metrics: impl Fn(&State, Option<&crate::report::Report>, String) + Send,
) {
    let (client, default_ns) = loop {
        match kube::Config::infer().await {
            Ok(c) => {
                let ns = c.default_namespace.clone();
                match Client::try_from(c) {
                    Ok(client) => break (client, ns),
                    Err(e) => {
                        tracing::error!(error = %crate::error_chain(&e), "cannot build the Kubernetes client")
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "no Kubernetes configuration")
            }
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    let mut changes = start_watchers(&client, &watch, &default_ns);
    let mut creds = Credentials::new(&client);
    let mut state = State::default();
    // ECR tokens and registry logins, kept from run to run until half their life.
    let reuse = crate::probe::Reuse::across_runs(interval);
    let mut next_round = Instant::now() + interval;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut changed = false;
        while let Ok(c) = changes.try_recv() {
            state.workloads.apply(c);
            changed = true;
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
        let report = run_due(&mut state, &config, interval, &reuse).await;
        if report.is_some() || changed {
            let json = report_json(&state, interval, crate::probe::unix_now());
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

#[cfg(test)]
mod tests {
    use std::hash::{DefaultHasher, Hash, Hasher};

    use super::*;
    use crate::pullsecret::Entry;
    use crate::secret::Secret;

    fn set_with(password: &str) -> SecretSet {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("ci:{password}"));
        let mut set = SecretSet::default();
        set.add(
            "secret/team/regcred",
            Ok(vec![Entry {
                source: String::new(),
                key: "registry.example.com".into(),
                username: "ci".into(),
                basic: Secret::new(basic),
                ecr_password_expiration: None,
            }]),
        );
        set
    }

    /// Issue 23: one namespace's workloads cannot make the watcher hold more than its cap of
    /// results; a check it already uses stays free, and other namespaces are not held back.
    #[test]
    fn one_namespace_gets_at_most_its_cap_of_checks() {
        let mut per_ns = HashMap::new();
        for i in 0..MAX_CHECKS_PER_NAMESPACE {
            admit(&mut per_ns, "team", &format!("{i:016x}")).unwrap();
        }
        let err = admit(&mut per_ns, "team", "ffffffffffffffff").unwrap_err();
        assert!(err.contains("namespace team already uses 256"), "{err}");
        assert!(admit(&mut per_ns, "team", &format!("{:016x}", 7)).is_ok());
        assert!(admit(&mut per_ns, "other", "ffffffffffffffff").is_ok());
    }

    /// The attack: everything but the password is in `/report`, so an unkeyed hash
    /// of the same fields confirms a guess offline. The attacker's program, written against
    /// the published inputs, must not reproduce the id, not even with the right password.
    #[test]
    fn a_check_id_cannot_be_recomputed_from_what_report_shows_and_a_password() {
        let img: ImageRef = "registry.example.com/team/app:1".parse().unwrap();
        let set = set_with("Summer2024!");
        let id = check_id(&img, Some(&set));
        let attacker = |password: &str| {
            let guess = set_with(password);
            let mut h = DefaultHasher::new();
            img.normalized().hash(&mut h);
            guess.sources.hash(&mut h);
            for e in &guess.entries {
                let e = (
                    &e.source,
                    &e.key,
                    &e.username,
                    e.basic.expose(),
                    e.ecr_password_expiration,
                );
                e.hash(&mut h);
            }
            format!("{:016x}", h.finish())
        };
        assert_ne!(id, attacker("Summer2024!"));
        // Still an identity within the process: the schedule keys checks by it.
        assert_eq!(id, check_id(&img, Some(&set)));
        assert_ne!(id, check_id(&img, Some(&set_with("Winter2024!"))));
        assert_ne!(id, check_id(&img, None));
    }
}
