//! serve --watch under churn (issue 27 point 4): a fleet served by the FAKE Kubernetes API
//! (common::fleet, common::fake_watch) goes through three rollout storms, each replacing every
//! Deployment's template and pod and deleting and creating a fifth of the workloads, within
//! one interval. What watch holds must follow the cluster and not grow with the churn: every
//! deleted workload's series gone, every created one's there, as many checks as distinct
//! (image, credentials) and no more, no re-list, no extra reads inside the interval. Counts,
//! never times; the memory it takes at 10,000 workloads is the benchmark's
//! (scripts/bench --only watch --size 10000).

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::fleet::{Shape, fleet, report_workloads, rollout_storm, stack_images, workload_series};
use common::scrape::get;
use common::*;
use serde_json::Value;

/// `/report` once it satisfies `done`, or a failure naming `what`.
fn until(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let (code, text) = get(&format!("{base}/report"));
        if code == 200
            && let Ok(r) = serde_json::from_str::<Value>(&text)
            && done(&r)
        {
            return r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{what}: not after 120 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn rollout_storms_leave_exactly_the_live_workloads_checks_and_series() {
    let s = Stack::get();
    let images = stack_images(s);
    let shape = Shape {
        workloads: 200,
        namespaces: 10,
        secret_namespaces: 2,
    };
    let f = fleet(shape, &images);
    let served = f.served(s);
    let (api, kubeconfig) = (&served.api, &served.kubeconfig);
    // An interval longer than the test: every change below is inside one interval.
    let server = ServeProcess::start(
        &["--watch", "--all-namespaces", "--interval", "600s"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let base = server.base.clone();
    let every_verdict =
        |r: &Value| r["summary"]["workloads"] == f.workloads && r["summary"]["unknown"] == 0;
    let first = until(&base, "every workload with a verdict", every_verdict);
    assert_eq!(first["summary"]["containers"], f.containers);
    assert_eq!(
        first["summary"]["available"], f.containers,
        "every image exists and the robot's Secret is good"
    );
    assert_eq!(
        first["summary"]["checks"],
        f.distinct.len(),
        "one check per distinct pair"
    );
    let (series_before, count_before) = workload_series(&base);
    assert_eq!(count_before, f.containers, "one series per container");
    let lists = api.lists.load(Ordering::Relaxed);
    let gets = api.gets.load(Ordering::Relaxed);

    for round in 1..=3 {
        let storm = rollout_storm(api, &f, &images, 5);
        assert_eq!(storm.deleted.len(), storm.created.len());
        let after = until(&base, &format!("storm {round} in /report"), |r| {
            let now = report_workloads(r);
            every_verdict(r) && storm.created.is_subset(&now) && storm.deleted.is_disjoint(&now)
        });
        let (series, count) = workload_series(&base);
        assert!(
            storm.deleted.is_disjoint(&series),
            "storm {round}: a deleted workload keeps its series"
        );
        assert!(
            storm.created.is_subset(&series),
            "storm {round}: a created workload has no series"
        );
        assert_eq!(
            count, f.containers,
            "storm {round}: one series per live container"
        );
        assert_eq!(
            series.len(),
            series_before.len(),
            "storm {round}: workloads with series"
        );
        assert_eq!(
            after["summary"]["checks"],
            f.distinct.len(),
            "storm {round}: the same images and credentials, the same checks: none left over"
        );
        assert_eq!(after["summary"]["available"], f.containers);
        // Rollouts are watch events: no re-list, and the interval's reads are cached.
        assert_eq!(
            api.lists.load(Ordering::Relaxed),
            lists,
            "storm {round}: no re-list"
        );
        assert_eq!(
            api.gets.load(Ordering::Relaxed),
            gets,
            "storm {round}: ServiceAccounts and Secrets read once per interval"
        );
        // The next storm deletes and creates the same names again: start from the fleet.
        for (coll, obj) in &f.objects {
            api.put(coll, obj.clone());
        }
        for (ns, kind, name) in &storm.created {
            let coll = match kind.as_str() {
                "Deployment" => "apis/apps/v1/deployments",
                "StatefulSet" => "apis/apps/v1/statefulsets",
                "DaemonSet" => "apis/apps/v1/daemonsets",
                "CronJob" => "apis/batch/v1/cronjobs",
                "Job" => "apis/batch/v1/jobs",
                _ => "api/v1/pods",
            };
            api.delete(coll, ns, name);
        }
        until(&base, &format!("the fleet back after storm {round}"), |r| {
            let now = report_workloads(r);
            every_verdict(r) && storm.deleted.is_subset(&now) && storm.created.is_disjoint(&now)
        });
    }
}
