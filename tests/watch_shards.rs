//! serve --watch sharded (issue 27 point 3): the same fleet (common::fleet, served by the FAKE
//! Kubernetes API) watched by one unsharded process and by shards 0 and 1 of 2. The shards'
//! workload series are disjoint and together exactly the unsharded process's (same labels,
//! same values), each shard's /report holds only its namespaces, and no namespace is split.
//! Counts and sets, never times.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::fleet::{Shape, fleet, stack_images};
use common::scrape::get;
use common::*;
use serde_json::Value;

/// The workload series of a metrics page, as their text lines (name, labels and value).
fn workload_lines(base: &str) -> BTreeSet<String> {
    let (code, text) = get(&format!("{base}/metrics"));
    assert_eq!(code, 200);
    text.lines()
        .filter(|l| l.starts_with("ecr_pull_probe_workload_image_"))
        .map(str::to_string)
        .collect()
}

fn report(base: &str) -> Option<Value> {
    let (code, text) = get(&format!("{base}/report"));
    (code == 200)
        .then(|| serde_json::from_str(&text).ok())
        .flatten()
}

fn namespaces(r: &Value) -> BTreeSet<String> {
    r["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["namespace"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn two_shards_export_exactly_the_series_of_one_process() {
    let s = Stack::get();
    let images = stack_images(s);
    let shape = Shape {
        workloads: 120,
        namespaces: 12,
        secret_namespaces: 3,
    };
    let f = fleet(shape, &images);
    let served = f.served(s);
    let kc = served.kubeconfig.to_str().unwrap();
    let start = |extra: &[&str]| {
        let mut args = vec!["--watch", "--all-namespaces", "--interval", "600s"];
        args.extend_from_slice(extra);
        ServeProcess::start(&args, &[("KUBECONFIG", kc)])
    };
    let one = start(&[]);
    // The shard from the environment, as the StatefulSet sets it.
    let zero = ServeProcess::start(
        &["--watch", "--all-namespaces", "--interval", "600s"],
        &[
            ("KUBECONFIG", kc),
            ("ECR_PULL_PROBE_SHARD", "0"),
            ("ECR_PULL_PROBE_TOTAL_SHARDS", "2"),
        ],
    );
    let first = start(&["--shard", "1", "--total-shards", "2"]);

    // Every workload with a verdict: all of them in the unsharded process, all of them
    // between the two shards.
    let t = Instant::now();
    let (r_one, r_zero, r_first) = loop {
        let settled = |r: &Option<Value>| {
            r.as_ref()
                .is_some_and(|r| r["summary"]["unknown"] == 0 && r["identity"].is_object())
        };
        let (a, b, c) = (report(&one.base), report(&zero.base), report(&first.base));
        let count = |r: &Option<Value>| {
            r.as_ref()
                .and_then(|r| r["summary"]["workloads"].as_u64())
                .unwrap_or(0) as usize
        };
        if settled(&a)
            && settled(&b)
            && settled(&c)
            && count(&a) == f.workloads
            && count(&b) + count(&c) == f.workloads
        {
            break (a.unwrap(), b.unwrap(), c.unwrap());
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no verdicts after 120 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(r_one["shard"], serde_json::json!({"index": 0, "total": 1}));
    assert_eq!(r_zero["shard"], serde_json::json!({"index": 0, "total": 2}));
    assert_eq!(
        r_first["shard"],
        serde_json::json!({"index": 1, "total": 2})
    );
    for r in [&r_one, &r_zero, &r_first] {
        validate_watch(r);
    }

    // No namespace split, none lost, and both shards have work.
    let (ns0, ns1) = (namespaces(&r_zero), namespaces(&r_first));
    assert!(ns0.is_disjoint(&ns1), "a namespace on both shards");
    assert_eq!(
        ns0.union(&ns1).cloned().collect::<BTreeSet<_>>(),
        namespaces(&r_one)
    );
    assert!(!ns0.is_empty() && !ns1.is_empty(), "{ns0:?} / {ns1:?}");

    // The series: disjoint, and together exactly one process's.
    let (all, s0, s1) = (
        workload_lines(&one.base),
        workload_lines(&zero.base),
        workload_lines(&first.base),
    );
    assert_eq!(
        all.iter()
            .filter(|l| l.starts_with("ecr_pull_probe_workload_image_available"))
            .count(),
        f.containers,
        "one series per container"
    );
    assert!(s0.is_disjoint(&s1), "a series on both shards");
    let union: BTreeSet<String> = s0.union(&s1).cloned().collect();
    assert_eq!(
        union,
        all,
        "the shards' series are not one process's: only in the shards {:?}, only in one process {:?}",
        union.difference(&all).take(3).collect::<Vec<_>>(),
        all.difference(&union).take(3).collect::<Vec<_>>()
    );
}
