//! Prometheus metrics for serve mode, named after blackbox-exporter's (`*_success`,
//! `*_duration_seconds`, `*_timestamp_seconds`). Every label value comes from a bounded set:
//! the configured images, the fixed stage names, the catalogue's codes, the regions.
//! No secret ever becomes a label or a value.

use std::sync::atomic::AtomicU64;

use std::collections::BTreeSet;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::report::{
    ImageReport, KubeletStatus, Paths, Report, Status, Verdict, all_findings, wire_name,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImageLabel {
    image: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    image: String,
    stage: String,
}

/// One credential path of an image; `node` only on the paths that ran on a node (the node
/// provider's, with `--node-name`; the canary's, where the kubelet ran it).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    image: String,
    path: String,
    node: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageOnly {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabel {
    code: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabel {
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: String,
}

/// A workload's container image (serve --watch): one series per (workload, container).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadImageLabel {
    namespace: String,
    kind: String,
    name: String,
    container: String,
    image: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadFindingLabel {
    namespace: String,
    kind: String,
    name: String,
    container: String,
    image: String,
    code: String,
}

/// One container's verdict in serve --watch; `available` is `None` while unknown.
pub struct WorkloadVerdict<'a> {
    pub namespace: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub container: &'a str,
    pub image: &'a str,
    pub available: Option<bool>,
    pub codes: Vec<String>,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The label set of a series that has none: a family of it is a gauge that can be absent
/// (encoded as `name value` when present, like a plain gauge).
type NoLabels = [(&'static str, &'static str); 0];

fn duration_histogram() -> Histogram {
    // 5 ms .. ~80 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The metrics of a serve-mode process, updated after each run.
pub struct Metrics {
    registry: Registry,
    success: Family<ImageLabel, Gauge>,
    path_success: Family<PathLabel, Gauge>,
    stage_success: Family<StageLabel, Gauge>,
    identity_stage_success: Family<StageOnly, Gauge>,
    stage_duration: Family<StageOnly, Histogram, fn() -> Histogram>,
    pulled_bytes: Family<ImageLabel, Counter>,
    ecr_token_expiry: Family<RegionLabel, FloatGauge>,
    /// Absent unless the last run read a token with an expiry: a plain gauge would say 0
    /// (expired, to the expiring alert) before the first run and in modes without a token,
    /// and would keep the previous token's expiry after a run that could not read one.
    web_identity_token_expiry: Family<NoLabels, FloatGauge>,
    pull_secret_token_expiry: Family<ImageLabel, FloatGauge>,
    interval: FloatGauge,
    /// Absent before the first run: a 0 would read as "last ran in 1970" to the staleness
    /// alert, and as a run to a person.
    last_run: Family<NoLabels, FloatGauge>,
    last_run_duration: Family<NoLabels, FloatGauge>,
    findings: Family<FindingLabel, Gauge>,
    runs: Family<VerdictLabel, Counter>,
    workload_available: Family<WorkloadImageLabel, Gauge>,
    workload_finding: Family<WorkloadFindingLabel, Gauge>,
    /// The images and regions the per-image and per-region series were last written for, so
    /// a series whose image or region left the checked set is removed, not kept forever.
    live: std::sync::Mutex<(BTreeSet<String>, BTreeSet<String>)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            success: Family::default(),
            path_success: Family::default(),
            stage_success: Family::default(),
            identity_stage_success: Family::default(),
            stage_duration: Family::new_with_constructor(duration_histogram),
            pulled_bytes: Family::default(),
            ecr_token_expiry: Family::default(),
            web_identity_token_expiry: Family::default(),
            pull_secret_token_expiry: Family::default(),
            interval: FloatGauge::default(),
            last_run: Family::default(),
            last_run_duration: Family::default(),
            findings: Family::default(),
            runs: Family::default(),
            workload_available: Family::default(),
            workload_finding: Family::default(),
            live: Default::default(),
            registry: Registry::default(),
        };
        // The page lists the families in the order they are registered.
        let mut registry = Registry::with_prefix("ecr_pull_probe");
        m.register_results(&mut registry);
        m.register_expiries(&mut registry);
        m.register_runs(&mut registry);
        m.register_workloads(&mut registry);
        Metrics { registry, ..m }
    }

    /// What a run found per image, per credential path and per stage.
    fn register_results(&self, registry: &mut Registry) {
        registry.register(
            "success",
            "Whether the image could be pulled in the last run (1) or not (0)",
            self.success.clone(),
        );
        registry.register(
            "path_success",
            "Whether the image could be pulled on a credential path (pod_identity, pull_secrets, node_docker_config, node_credential_provider, kubelet_canary) or by the kubelet over its whole credential list (kubelet) in the last run (1) or not (0); inconclusive paths are absent",
            self.path_success.clone(),
        );
        registry.register(
            "stage_success",
            "Whether a stage passed in the last run (skipped stages are absent)",
            self.stage_success.clone(),
        );
        registry.register(
            "identity_stage_success",
            "Whether an identity stage (web_identity_token, sts) passed in the last run",
            self.identity_stage_success.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "Duration of probe stages",
            self.stage_duration.clone(),
        );
        registry.register(
            "pulled_bytes",
            "Bytes pulled and verified",
            self.pulled_bytes.clone(),
        );
    }

    /// When the credentials a run used stop working: what the expiring alerts read.
    fn register_expiries(&self, registry: &mut Registry) {
        registry.register(
            "ecr_token_expiry_timestamp_seconds",
            "Expiry of the last ECR authorization token, per region",
            self.ecr_token_expiry.clone(),
        );
        registry.register(
            "web_identity_token_expiry_timestamp_seconds",
            "Expiry (exp) of the projected web identity token",
            self.web_identity_token_expiry.clone(),
        );
        registry.register(
            "pull_secret_token_expiry_timestamp_seconds",
            "Expiry of the ECR token in the pull secret entry the kubelet would use for the image, from the last run",
            self.pull_secret_token_expiry.clone(),
        );
    }

    /// The runs themselves: when, how long, how often, with which verdict and findings.
    fn register_runs(&self, registry: &mut Registry) {
        registry.register(
            "interval_seconds",
            "The configured time between runs (for staleness alerts)",
            self.interval.clone(),
        );
        registry.register(
            "last_run_timestamp_seconds",
            "When the last run finished",
            self.last_run.clone(),
        );
        registry.register(
            "last_run_duration_seconds",
            "How long the last run took",
            self.last_run_duration.clone(),
        );
        registry.register(
            "findings",
            "Findings of the last run, by code and severity",
            self.findings.clone(),
        );
        registry.register("runs", "Completed runs, by verdict", self.runs.clone());
    }

    /// serve --watch: one series per watched workload's container.
    fn register_workloads(&self, registry: &mut Registry) {
        registry.register(
            "workload_image_available",
            "serve --watch: whether the workload's container image can be pulled with the credentials the kubelet would use for it (1) or not (0); absent until checked",
            self.workload_available.clone(),
        );
        registry.register(
            "workload_image_finding",
            "serve --watch: the finding codes of the last check of the workload's container image (1 per code)",
            self.workload_finding.clone(),
        );
    }

    /// serve --watch: every watched container's verdict, replacing the last set (series of
    /// deleted workloads and changed images go), and the pull secrets' ECR token expiry per
    /// image (the earliest, when workloads use several secrets for one image).
    pub fn observe_workloads<'a>(
        &self,
        rows: impl Iterator<Item = WorkloadVerdict<'a>>,
        pull_secret_expiry: &std::collections::BTreeMap<String, i64>,
    ) {
        self.workload_available.clear();
        self.workload_finding.clear();
        self.pull_secret_token_expiry.clear();
        for r in rows {
            let label = WorkloadImageLabel {
                namespace: r.namespace.to_string(),
                kind: r.kind.to_string(),
                name: r.name.to_string(),
                container: r.container.to_string(),
                image: r.image.to_string(),
            };
            let Some(available) = r.available else {
                continue;
            };
            self.workload_available
                .get_or_create(&label)
                .set(i64::from(available));
            for code in r.codes {
                self.workload_finding
                    .get_or_create(&WorkloadFindingLabel {
                        namespace: label.namespace.clone(),
                        kind: label.kind.clone(),
                        name: label.name.clone(),
                        container: label.container.clone(),
                        image: label.image.clone(),
                        code,
                    })
                    .set(1);
            }
        }
        for (image, exp) in pull_secret_expiry {
            self.pull_secret_token_expiry
                .get_or_create(&ImageLabel {
                    image: image.clone(),
                })
                .set(*exp as f64);
        }
    }

    /// serve --watch: a run of due checks finished; the run-wide series only (the per-image
    /// ones of `observe` would flap as batches differ).
    pub fn observe_watch_run(&self, report: &Report, finished_at: f64) {
        self.identity_stage_success.clear();
        for s in &report.identity.stages {
            if s.status == Status::Skip {
                continue;
            }
            self.identity_stage_success
                .get_or_create(&StageOnly {
                    stage: s.name.clone(),
                })
                .set(i64::from(matches!(s.status, Status::Pass | Status::Warn)));
        }
        self.observe_token_expiry(report);
        self.observe_run_end(report, finished_at);
    }

    fn observe_token_expiry(&self, report: &Report) {
        self.web_identity_token_expiry.clear();
        if let Some(exp) = report.identity.token.as_ref().and_then(|t| t.expires_at) {
            self.web_identity_token_expiry
                .get_or_create(&[])
                .set(exp as f64);
        }
    }

    /// Marks the watch state current without a run (nothing was due): staleness is about
    /// the scheduler stopping, not about there being nothing to check.
    pub fn touch(&self, at: f64) {
        self.last_run.get_or_create(&[]).set(at);
    }

    /// The configured interval between runs, for the staleness alert.
    pub fn set_interval(&self, interval: std::time::Duration) {
        self.interval.set(interval.as_secs_f64());
    }

    /// Folds a finished run into the metrics. `finished_at` is Unix seconds.
    pub fn observe(&self, report: &Report, finished_at: f64) {
        self.success.clear();
        self.path_success.clear();
        self.stage_success.clear();
        self.identity_stage_success.clear();
        self.findings.clear();
        self.pull_secret_token_expiry.clear();
        self.observe_stages(report);
        for i in &report.images {
            self.observe_image(i);
        }
        self.drop_stale_series(report);
        self.observe_token_expiry(report);
        for f in all_findings(report) {
            let severity = wire_name(&f.severity);
            self.findings
                .get_or_create(&FindingLabel {
                    code: f.code.name().to_string(),
                    severity,
                })
                .inc();
        }
        self.observe_run_end(report, finished_at);
    }

    /// Every stage that ran, the identity's and each image's: its duration and whether it
    /// passed.
    fn observe_stages(&self, report: &Report) {
        let stages = report.identity.stages.iter().map(|s| (None, s)).chain(
            report
                .images
                .iter()
                .flat_map(|i| i.stages.iter().map(move |s| (Some(i.image.as_str()), s))),
        );
        for (image, s) in stages {
            if s.status == Status::Skip {
                continue;
            }
            self.stage_duration
                .get_or_create(&StageOnly {
                    stage: s.name.clone(),
                })
                .observe(s.duration_ms as f64 / 1000.0);
            let ok = i64::from(matches!(s.status, Status::Pass | Status::Warn));
            match image {
                Some(image) => self.stage_success.get_or_create(&StageLabel {
                    image: image.to_string(),
                    stage: s.name.clone(),
                }),
                None => self.identity_stage_success.get_or_create(&StageOnly {
                    stage: s.name.clone(),
                }),
            }
            .set(ok);
        }
    }

    /// One image's verdict, its conclusive credential paths, the bytes pulled and the expiry
    /// of the tokens it was pulled with.
    fn observe_image(&self, i: &ImageReport) {
        let label = ImageLabel {
            image: i.image.clone(),
        };
        self.success
            .get_or_create(&label)
            .set(i64::from(i.verdict == Verdict::Pass));
        for (path, status, node) in path_statuses(&i.paths) {
            let Some(status @ (Status::Pass | Status::Warn | Status::Fail)) = status else {
                continue;
            };
            self.path_success
                .get_or_create(&PathLabel {
                    image: i.image.clone(),
                    path: path.to_string(),
                    node,
                })
                .set(i64::from(status != Status::Fail));
        }
        if let Some(exp) = i
            .paths
            .pull_secrets
            .as_ref()
            .and_then(|s| s.password_expires_at)
        {
            self.pull_secret_token_expiry
                .get_or_create(&label)
                .set(exp as f64);
        }
        let bytes: u64 = i.blobs.iter().map(|b| b.bytes).sum();
        self.pulled_bytes.get_or_create(&label).inc_by(bytes);
        if let Some(t) = &i.ecr_token {
            let expiry = [t.expires_at, t.password_expiration]
                .into_iter()
                .flatten()
                .min();
            if let Some(e) = expiry {
                self.ecr_token_expiry
                    .get_or_create(&RegionLabel {
                        region: t.region.clone(),
                    })
                    .set(e as f64);
            }
        }
    }

    /// The run-wide series every run ends with, `serve` or `serve --watch`.
    fn observe_run_end(&self, report: &Report, finished_at: f64) {
        let verdict = wire_name(&report.verdict);
        self.runs.get_or_create(&VerdictLabel { verdict }).inc();
        self.last_run.get_or_create(&[]).set(finished_at);
        self.last_run_duration
            .get_or_create(&[])
            .set(report.duration_ms as f64 / 1000.0);
    }

    /// Removes the counter and expiry series of images and regions this run no longer checks
    /// (with `--images-from`, a workload's images change), so cardinality follows the set.
    fn drop_stale_series(&self, report: &Report) {
        let images: BTreeSet<String> = report.images.iter().map(|i| i.image.clone()).collect();
        let regions: BTreeSet<String> = report
            .images
            .iter()
            .filter_map(|i| i.ecr_token.as_ref().map(|t| t.region.clone()))
            .collect();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for image in live.0.difference(&images) {
            self.pulled_bytes.remove(&ImageLabel {
                image: image.clone(),
            });
        }
        for region in live.1.difference(&regions) {
            self.ecr_token_expiry.remove(&RegionLabel {
                region: region.clone(),
            });
        }
        *live = (images, regions);
    }

    /// The OpenMetrics text exposition, each family's series in a stable order.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        stable_order(&out)
    }

    /// The same samples in the Prometheus text format 0.0.4, for a client that asks for
    /// `text/plain` and not OpenMetrics (`promtool check metrics`, older scrapers).
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }
}

/// Each credential path of an image (`path_success`'s `path` label), its status when it ran,
/// and the node it ran on where that is known.
fn path_statuses(p: &Paths) -> [(&'static str, Option<Status>, Option<String>); 6] {
    [
        ("pod_identity", Some(p.pod_identity.status), None),
        (
            "pull_secrets",
            p.pull_secrets.as_ref().map(|s| s.status),
            None,
        ),
        (
            "node_docker_config",
            p.node_docker_config.as_ref().map(|s| s.status),
            None,
        ),
        (
            "node_credential_provider",
            p.node_credential_provider.as_ref().map(|n| n.status),
            p.node_credential_provider
                .as_ref()
                .and_then(|n| n.node.clone()),
        ),
        (
            "kubelet_canary",
            p.kubelet_canary.as_ref().map(|c| c.status),
            p.kubelet_canary.as_ref().and_then(|c| c.node.clone()),
        ),
        // The kubelet's answer over its whole list; absent while unknown.
        (
            "kubelet",
            p.kubelet_status().and_then(|k| match k {
                KubeletStatus::Pass => Some(Status::Pass),
                KubeletStatus::Fail => Some(Status::Fail),
                KubeletStatus::Unknown => None,
            }),
            None,
        ),
    ]
}

/// Sorts each family's samples by their labels (`le` aside, so a histogram's buckets keep
/// their order): prometheus-client keeps series in a hash map, and a page whose lines move
/// from scrape to scrape cannot be diffed or read twice the same way.
fn stable_order(om: &str) -> String {
    fn key(line: &str) -> String {
        let labels = line
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map_or("", |(l, _)| l);
        let kept: Vec<&str> = labels
            .split(',')
            .filter(|l| !l.starts_with("le="))
            .collect();
        kept.join(",")
    }
    let mut out = String::with_capacity(om.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_by_cached_key(|l| key(l));
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in om.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

/// The classic text format of what prometheus-client writes: a counter family is named by
/// its `_total` sample, and there is no `# UNIT` or `# EOF`. Gauges and histograms are
/// written alike in both formats.
fn openmetrics_to_text(om: &str) -> String {
    let counters: BTreeSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let tail = if tail == "unknown" { "untyped" } else { tail };
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn series_of_images_no_longer_checked_are_removed() {
        let m = Metrics::new();
        m.observe(&fixtures::passing(&["a/one", "a/two"], 10), 1.0);
        let text = m.encode();
        assert!(
            text.contains(r#"pulled_bytes_total{image="a/two"} 10"#),
            "{text}"
        );
        m.observe(&fixtures::passing(&["a/one"], 5), 2.0);
        let text = m.encode();
        assert!(
            text.contains(r#"pulled_bytes_total{image="a/one"} 15"#),
            "{text}"
        );
        assert!(!text.contains("a/two"), "{text}");
    }

    /// Issue 8: which path broke, not only that the image did.
    #[test]
    fn each_path_has_its_own_series_and_the_node_path_names_its_node() {
        let m = Metrics::new();
        let mut r = fixtures::passing(&["a/one"], 10);
        r.images[0].paths.node_credential_provider = Some(crate::report::NodeProviderPath {
            status: Status::Fail,
            config: "/etc/eks/image-credential-provider/config.json".into(),
            node: Some("ip-10-0-1-23".into()),
            provider: Some("ecr-credential-provider".into()),
            match_image: None,
            auth_key: None,
            username: None,
            password_expires_at: None,
            cache_key_type: None,
            cache_duration: None,
            environment_withheld: vec![],
            stages: vec![],
            findings: vec![],
        });
        m.observe(&r, 1.0);
        let text = m.encode();
        assert!(
            text.contains(r#"path_success{image="a/one",path="pod_identity",node=""} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"path_success{image="a/one",path="node_credential_provider",node="ip-10-0-1-23"} 0"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"path="pull_secrets""#), "{text}");
    }

    /// For the alert on a pull secret's ECR token running out: the entry's expiry per image,
    /// gone when the image is no longer checked with a pull secret.
    #[test]
    fn a_pull_secrets_ecr_token_expiry_is_a_gauge_per_image() {
        let m = Metrics::new();
        m.set_interval(std::time::Duration::from_secs(300));
        let mut r = fixtures::passing(&["a/one"], 10);
        r.images[0].paths.pull_secrets = Some(crate::report::SecretPath {
            status: Status::Pass,
            source: "secret/shop/ecr-pull".into(),
            entry: None,
            username: None,
            password_expires_at: Some(1_700_000_000),
            stages: vec![],
            findings: vec![],
        });
        m.observe(&r, 1.0);
        let text = m.encode();
        assert!(
            text.contains(
                r#"pull_secret_token_expiry_timestamp_seconds{image="a/one"} 1700000000"#
            ),
            "{text}"
        );
        assert!(
            text.contains("ecr_pull_probe_interval_seconds 300"),
            "{text}"
        );
        m.observe(&fixtures::passing(&["a/one"], 10), 2.0);
        assert!(
            !m.encode()
                .contains("pull_secret_token_expiry_timestamp_seconds{")
        );
    }

    /// The token's expiry is the last run's or absent: never 0 before a run or without web
    /// identity (the expiring alert would read it as expired), never the token before one
    /// that could not be read.
    #[test]
    fn the_web_identity_token_expiry_is_the_last_runs_or_absent() {
        let name = "ecr_pull_probe_web_identity_token_expiry_timestamp_seconds";
        let m = Metrics::new();
        assert!(!m.encode().contains(name));
        let mut r = fixtures::passing(&["a/one"], 10);
        r.identity.token = Some(crate::report::TokenClaims {
            expires_at: Some(1_800_000_000),
            ..Default::default()
        });
        m.observe(&r, 1.0);
        let text = m.encode();
        assert!(text.contains(&format!("\n{name} 1800000000")), "{text}");
        r.identity.token = None;
        m.observe(&r, 2.0);
        assert!(!m.encode().contains(name));
        m.observe_watch_run(&fixtures::passing(&[], 0), 3.0);
        assert!(!m.encode().contains(name));
    }

    /// Issue 30 point 9: nothing claims a run before the first one.
    #[test]
    fn the_last_run_is_absent_before_the_first_run() {
        let m = Metrics::new();
        let page = m.encode();
        assert!(
            !page.contains("\necr_pull_probe_last_run_timestamp_seconds "),
            "{page}"
        );
        assert!(
            !page.contains("\necr_pull_probe_last_run_duration_seconds "),
            "{page}"
        );
        m.observe(&fixtures::passing(&["a/one"], 10), 1_800_000_000.0);
        let page = m.encode();
        assert!(
            page.contains("\necr_pull_probe_last_run_timestamp_seconds 1800000000"),
            "{page}"
        );
        assert!(
            page.contains("\necr_pull_probe_last_run_duration_seconds "),
            "{page}"
        );
    }

    /// Issue 30 point 9: the same series in the same order whatever order they were made in.
    #[test]
    fn series_are_in_a_stable_order() {
        let names: Vec<String> = (0..12).map(|i| format!("x.example/img-{i:02}")).collect();
        let forward: Vec<&str> = names.iter().map(String::as_str).collect();
        let backward: Vec<&str> = forward.iter().rev().copied().collect();
        let page = |images: &[&str]| {
            let m = Metrics::new();
            m.observe(&fixtures::passing(images, 10), 1.0);
            m.encode()
        };
        let (a, b) = (page(&forward), page(&backward));
        assert_eq!(a, b);
        let rows: Vec<&str> = a
            .lines()
            .filter(|l| l.starts_with("ecr_pull_probe_success{"))
            .collect();
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(rows, sorted);
        assert_eq!(rows.len(), 12);
    }

    #[test]
    fn the_text_format_names_counters_by_their_total_and_has_no_eof() {
        let m = Metrics::new();
        m.observe(&fixtures::passing(&["a/one"], 10), 1.0);
        let text = m.encode_text();
        assert!(
            text.contains("# TYPE ecr_pull_probe_pulled_bytes_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP ecr_pull_probe_runs_total "), "{text}");
        assert!(
            text.contains("# TYPE ecr_pull_probe_success gauge\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&text), samples(&m.encode()));
    }
}
