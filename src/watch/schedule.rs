//! The watch's schedule: which (image, credentials) each watched container is checked as, one
//! check per distinct pair whatever the number of workloads sharing it, when each is due (a
//! pass after the interval, a failure sooner with a bounded backoff), and what each container's
//! answer is. The credentials reader and the check are handed in ([`PullSecrets`], [`Check`]),
//! as k8s-image-availability-exporter's store is handed its check, so all of this is tested
//! without a cluster or a registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::source::{WorkloadKey, Workloads};
use crate::pullsecret::SecretSet;
use crate::reference::ImageRef;
use crate::report::{IdentityReport, ImageReport, Report, Verdict, Workload};

/// Most distinct (image, credentials) one namespace's workloads may have checked: each result
/// is bounded (`ImageReport::bound`), so this bounds what one namespace's editor can make the
/// watcher hold. Containers past it are `invalid` in `/report`, with the reason.
pub const MAX_CHECKS_PER_NAMESPACE: usize = 256;

/// The most checks one run holds: a run's report holds every image's whole result until it
/// is recorded, so at 10,000 workloads one run of every check was the peak of memory (issue
/// 27). Runs of at most this many keep it bounded whatever the cluster's size, and publish
/// verdicts as each run ends; each run resolves the identity again (ECR tokens and logins
/// are kept across runs).
pub const MAX_RUN: usize = 200;

/// The first retry of a failing check; doubled per failure, never past the interval.
pub const FAIL_RETRY: Duration = Duration::from_secs(15);

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

/// Where the schedule gets a workload's pull secrets: the set the kubelet would have for its
/// pods and who listed them, or `None` when there are none (the node's credentials then).
pub trait PullSecrets {
    fn for_workload(
        &mut self,
        w: &Workload,
    ) -> impl Future<Output = Option<(SecretSet, &'static str)>> + Send;
}

/// The check the schedule runs: the due (image, credentials) as one run, a report with one
/// `images[]` entry per item, in order.
pub trait Check {
    type Error: std::error::Error + 'static;
    fn run(
        &self,
        items: &[(ImageRef, Option<Arc<SecretSet>>)],
    ) -> impl Future<Output = Result<Report, Self::Error>> + Send;
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

/// What watch keeps of a check's report: what the metrics and `/report` read of it, and the
/// report itself as its JSON. `/report` is all that reads the whole report, and as a tree of
/// structs it costs two to three times its JSON in small heap strings: at 10,000 workloads
/// the answers were most of the memory (issue 27).
#[derive(Debug)]
pub struct Answer {
    pub verdict: Verdict,
    /// The finding codes, sorted and once each.
    pub codes: Vec<&'static str>,
    /// When the ECR password of the pull secret that answered expires.
    pub password_expires_at: Option<i64>,
    /// The image's report as `/report` serves it.
    pub json: Box<serde_json::value::RawValue>,
}

impl Answer {
    pub fn of(r: &ImageReport) -> Answer {
        let codes: BTreeSet<&'static str> = r.all_findings().map(|f| f.code.name()).collect();
        // An ImageReport is plain data: serializing it cannot fail; if it ever did, /report
        // says so in the check's place rather than the watcher stopping.
        let json = serde_json::value::to_raw_value(r).unwrap_or_else(|e| {
            serde_json::value::to_raw_value(&format!("not serializable: {e}"))
                .expect("a string serializes")
        });
        Answer {
            verdict: r.verdict,
            codes: codes.into_iter().collect(),
            password_expires_at: r
                .paths
                .pull_secrets
                .as_ref()
                .and_then(|p| p.password_expires_at),
            json,
        }
    }
}

/// A distinct (image, credentials) and its last answer.
pub struct CheckState {
    pub image: ImageRef,
    /// Shared by every check of the workloads that have this set (one Secret's bytes once).
    pub secrets: Option<Arc<SecretSet>>,
    pub result: Option<Arc<Answer>>,
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
        self.result = Some(Arc::new(Answer::of(&result)));
        self.checked_at = Some(at);
    }
}

/// What `/report` and the metrics say of one watched container: the fixed list of outcomes
/// (deckhouse's image store keeps one too), never a free-form string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Its check passed: the kubelet's credentials pull it.
    Available,
    /// Its check failed.
    Unavailable,
    /// Checked, but the kubelet would go on to node credentials a cluster-wide watcher cannot
    /// see (its pull secrets do not pull).
    Inconclusive,
    /// Not checked yet.
    Unknown,
    /// Not a valid reference, or over its namespace's cap of checks: never checked.
    Invalid,
}

impl Availability {
    /// The `workload_image_available` value: none while unknown or inconclusive.
    pub fn metric(self) -> Option<bool> {
        match self {
            Availability::Unknown | Availability::Inconclusive => None,
            s => Some(s == Availability::Available),
        }
    }
}

/// Everything the scheduler knows: workloads, their rows, the checks.
#[derive(Default)]
pub struct State {
    pub workloads: Workloads,
    pub rows: BTreeMap<WorkloadKey, (Option<&'static str>, Vec<Row>)>,
    pub checks: BTreeMap<String, CheckState>,
    pub identity: Option<IdentityReport>,
    /// Which namespaces this replica checks (`serve --watch --shard`).
    pub shard: crate::shard::Shard,
    pub batches: u64,
    pub checks_run: u64,
}

impl State {
    /// Works out the rows of the dirty workloads (reading credentials), drops what deleted
    /// workloads left, and the checks nobody uses.
    pub async fn refresh(&mut self, creds: &mut impl PullSecrets, now: Instant) {
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
                Some((set, from)) => (Some(Arc::new(set)), Some(from)),
                None => (None, None),
            };
            let mut rows = Vec::new();
            for c in &w.containers {
                let check = match c.image.parse::<ImageRef>() {
                    Ok(img) => 'check: {
                        let id = check_id(&img, set.as_deref());
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

    /// A row's availability and the result answering for it.
    pub fn status_of(&self, row: &Row) -> (Availability, Option<&Answer>) {
        match &row.check {
            Err(_) => (Availability::Invalid, None),
            Ok(id) => match self.checks.get(id).and_then(|c| c.result.as_deref()) {
                None => (Availability::Unknown, None),
                Some(r) if r.verdict == Verdict::Pass => (Availability::Available, Some(r)),
                // The kubelet would go on to node credentials a cluster-wide watcher cannot see.
                Some(r) if r.verdict == Verdict::Inconclusive => {
                    (Availability::Inconclusive, Some(r))
                }
                Some(r) => (Availability::Unavailable, Some(r)),
            },
        }
    }

    /// Runs up to [`MAX_RUN`] of the due checks as one run of `check`; records each answer
    /// and when it is due again (the rest are the next tick's). A run that cannot start is
    /// tried again after the first retry delay, not at once.
    pub async fn run_due(&mut self, check: &impl Check, interval: Duration) -> Option<Report> {
        let mut due = self.due(Instant::now());
        if due.is_empty() {
            return None;
        }
        due.truncate(MAX_RUN);
        let items: Vec<(ImageRef, Option<Arc<SecretSet>>)> = due
            .iter()
            .map(|id| {
                let c = &self.checks[id];
                (c.image.clone(), c.secrets.clone())
            })
            .collect();
        let report = match check.run(&items).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "checks could not start");
                let later = Instant::now() + FAIL_RETRY.min(interval);
                for id in &due {
                    if let Some(c) = self.checks.get_mut(id) {
                        c.next_due = later;
                    }
                }
                return None;
            }
        };
        let (now, at) = (Instant::now(), crate::probe::unix_now());
        for (id, r) in due.iter().zip(report.images.iter()) {
            if let Some(c) = self.checks.get_mut(id) {
                c.record(r.clone(), now, at, interval);
            }
        }
        self.batches += 1;
        self.checks_run += due.len() as u64;
        self.identity = Some(report.identity.clone());
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
}

#[cfg(test)]
mod tests {
    use std::hash::DefaultHasher;
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::{WorkloadKind, workload_from_spec};
    use crate::pullsecret::Entry;
    use crate::secret::Secret;
    use crate::watch::source::Change;

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

    /// Pull secrets by workload name, and how often each workload was asked about.
    #[derive(Default)]
    struct Secrets {
        by_name: HashMap<String, (SecretSet, &'static str)>,
        asked: Vec<String>,
    }

    impl PullSecrets for Secrets {
        async fn for_workload(&mut self, w: &Workload) -> Option<(SecretSet, &'static str)> {
            self.asked.push(w.name.clone());
            self.by_name.get(&w.name).cloned()
        }
    }

    /// The injected check: answers each image by the verdict its tag names
    /// (`:pass`, `:fail`, `:inconclusive`), records what it was asked, or fails to start.
    #[derive(Default)]
    struct Answers {
        asked: Mutex<Vec<Vec<String>>>,
        refuse: bool,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("no identity")]
    struct NoIdentity;

    impl Check for Answers {
        type Error = NoIdentity;
        async fn run(
            &self,
            items: &[(ImageRef, Option<Arc<SecretSet>>)],
        ) -> Result<Report, NoIdentity> {
            let names: Vec<String> = items.iter().map(|(i, _)| i.original.clone()).collect();
            self.asked.lock().unwrap().push(names.clone());
            if self.refuse {
                return Err(NoIdentity);
            }
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut report = crate::report::fixtures::passing(&refs, 1);
            for (img, (i, _)) in report.images.iter_mut().zip(items) {
                img.verdict = match i.original.rsplit(':').next() {
                    Some("fail") => Verdict::Fail,
                    Some("inconclusive") => Verdict::Inconclusive,
                    _ => Verdict::Pass,
                };
            }
            Ok(report)
        }
    }

    fn deployment(name: &str, images: &[&str]) -> Workload {
        let containers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
            .collect();
        let spec = serde_json::from_value(serde_json::json!({ "containers": containers })).unwrap();
        workload_from_spec(WorkloadKind::Deployment, "shop", name, &spec)
    }

    fn state_of(workloads: &[Workload]) -> State {
        let mut state = State::default();
        for w in workloads {
            state.workloads.apply(Change::Upsert(w.clone()));
        }
        state
    }

    fn statuses(state: &State) -> Vec<(String, Availability)> {
        state
            .rows
            .iter()
            .flat_map(|(k, (_, rows))| {
                rows.iter()
                    .map(move |r| (format!("{}/{}", k.name, r.container), state.status_of(r).0))
            })
            .collect()
    }

    const INTERVAL: Duration = Duration::from_secs(600);

    /// Issue 27: a run holds at most MAX_RUN checks; the rest run on the next ticks, and every
    /// container has its verdict once they have.
    #[tokio::test(start_paused = true)]
    async fn due_checks_run_at_most_max_run_at_a_time() {
        let images: Vec<String> = (0..MAX_RUN + 30)
            .map(|i| format!("r.example/app{i}:pass"))
            .collect();
        let refs: Vec<&str> = images.iter().map(String::as_str).collect();
        let mut state = state_of(&[deployment("wide", &refs)]);
        state.refresh(&mut Secrets::default(), Instant::now()).await;
        let check = Answers::default();
        state.run_due(&check, INTERVAL).await.unwrap();
        state.run_due(&check, INTERVAL).await.unwrap();
        assert!(
            state.run_due(&check, INTERVAL).await.is_none(),
            "nothing left"
        );
        let runs: Vec<usize> = check.asked.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(runs, [MAX_RUN, 30]);
        assert!(
            statuses(&state)
                .iter()
                .all(|(_, a)| *a == Availability::Available)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn workloads_sharing_an_image_and_credentials_share_one_check() {
        let mut state = state_of(&[
            deployment("web", &["r.example/app:pass", "r.example/side:pass"]),
            deployment("api", &["r.example/app:pass"]),
            deployment("batch", &["r.example/app:pass"]),
        ]);
        let mut creds = Secrets::default();
        creds
            .by_name
            .insert("batch".into(), (set_with("pw"), "serviceaccount"));
        state.refresh(&mut creds, Instant::now()).await;
        // app without credentials (web, api), app with batch's, side: three checks.
        assert_eq!(state.checks.len(), 3);
        let check = Answers::default();
        state.run_due(&check, INTERVAL).await.unwrap();
        let asked = check.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "one run for every due check");
        let mut names = asked[0].clone();
        names.sort();
        assert_eq!(
            names,
            [
                "r.example/app:pass",
                "r.example/app:pass",
                "r.example/side:pass"
            ]
        );
        assert!(
            statuses(&state)
                .iter()
                .all(|(_, s)| *s == Availability::Available)
        );
        assert_eq!(
            state.rows[&WorkloadKey::of(&deployment("batch", &[]))].0,
            Some("serviceaccount")
        );
        assert_eq!((state.batches, state.checks_run), (1, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_is_unknown_until_checked_and_then_says_its_outcome() {
        let mut state = state_of(&[deployment(
            "web",
            &[
                "r.example/a:pass",
                "r.example/b:fail",
                "r.example/c:inconclusive",
                "Not A Reference",
            ],
        )]);
        state.refresh(&mut Secrets::default(), Instant::now()).await;
        assert_eq!(
            statuses(&state).iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [
                Availability::Unknown,
                Availability::Unknown,
                Availability::Unknown,
                Availability::Invalid
            ]
        );
        state.run_due(&Answers::default(), INTERVAL).await.unwrap();
        let got: Vec<Availability> = statuses(&state).iter().map(|(_, s)| *s).collect();
        assert_eq!(
            got,
            [
                Availability::Available,
                Availability::Unavailable,
                Availability::Inconclusive,
                Availability::Invalid
            ]
        );
        assert_eq!(
            got.iter().map(|a| a.metric()).collect::<Vec<_>>(),
            [Some(true), Some(false), None, Some(false)]
        );
    }

    /// A pass is due again after the interval; a failure after 15 s, then 30 s, 60 s, ...
    /// never past the interval; a pass resets the backoff.
    #[tokio::test(start_paused = true)]
    async fn a_failing_check_is_retried_sooner_backing_off_up_to_the_interval() {
        let interval = Duration::from_secs(100);
        let mut state = state_of(&[deployment("web", &["r.example/a:pass", "r.example/b:fail"])]);
        state.refresh(&mut Secrets::default(), Instant::now()).await;
        let check = Answers::default();
        let mut runs = Vec::new();
        let start = Instant::now();
        for _ in 0..240 {
            if state.run_due(&check, interval).await.is_some() {
                let n = check.asked.lock().unwrap().last().unwrap().len();
                runs.push((start.elapsed().as_secs(), n));
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Both at 0; the failure at 15, 45 (+30), 105 (+60), 205 (+100, capped); the pass at
        // 100 and 200 alone.
        assert_eq!(
            runs,
            [
                (0, 2),
                (15, 1),
                (45, 1),
                (100, 1),
                (105, 1),
                (200, 1),
                (205, 1)
            ]
        );
        let failing = state
            .checks
            .values()
            .find(|c| c.image.original.ends_with(":fail"))
            .unwrap();
        assert_eq!(failing.failures, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_cannot_start_is_tried_again_after_the_first_retry() {
        let mut state = state_of(&[deployment("web", &["r.example/a:pass"])]);
        state.refresh(&mut Secrets::default(), Instant::now()).await;
        let refusing = Answers {
            refuse: true,
            ..Default::default()
        };
        assert!(state.run_due(&refusing, INTERVAL).await.is_none());
        assert!(state.due(Instant::now()).is_empty(), "not at once");
        assert_eq!(state.due(Instant::now() + FAIL_RETRY).len(), 1);
        assert_eq!(statuses(&state)[0].1, Availability::Unknown);
        assert_eq!(state.batches, 0);
    }

    /// Only the dirty workloads' credentials are read; a deleted workload's rows go, and a
    /// check no workload uses any more is dropped with them.
    #[tokio::test(start_paused = true)]
    async fn only_changed_workloads_are_worked_out_and_unused_checks_are_dropped() {
        let mut state = state_of(&[
            deployment("web", &["r.example/a:pass"]),
            deployment("api", &["r.example/b:pass"]),
        ]);
        let mut creds = Secrets::default();
        state.refresh(&mut creds, Instant::now()).await;
        assert_eq!(creds.asked, ["api", "web"]);
        state.run_due(&Answers::default(), INTERVAL).await.unwrap();
        state
            .workloads
            .apply(Change::Delete(WorkloadKey::of(&deployment("api", &[]))));
        state.workloads.apply(Change::Upsert(deployment(
            "web",
            &["r.example/a:pass", "r.example/c:pass"],
        )));
        state.refresh(&mut creds, Instant::now()).await;
        assert_eq!(creds.asked, ["api", "web", "web"]);
        assert_eq!(state.rows.len(), 1);
        let images: Vec<&str> = state
            .checks
            .values()
            .map(|c| c.image.original.as_str())
            .collect();
        assert_eq!(images.len(), 2);
        assert!(!images.contains(&"r.example/b:pass"), "{images:?}");
        // The kept check keeps its verdict; only the new one is due.
        let due = state.due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(state.checks[&due[0]].image.original, "r.example/c:pass");
    }
}
