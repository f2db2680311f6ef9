#!/usr/bin/env python3
"""Prints the watch benchmark's figures (the BENCH_WATCH line of tests/watch_scale.rs, on
stdin) with the goals they are held to: issue 12's (one check per distinct (image,
credentials) per interval, every workload with a verdict within two intervals, peak RSS
<= 64 MiB at 1,000 workloads) and issue 27's (at 10,000 workloads: peak RSS <= 128 MiB, at
most 3 registry requests per distinct (image, credentials) per interval, API requests per
interval that do not grow with the workloads, RSS bounded through a rollout storm)."""
import json
import sys

line = next((l for l in sys.stdin if l.startswith("BENCH_WATCH ")), None)
if line is None:
    sys.exit("no BENCH_WATCH line from tests/watch_scale.rs")
f = json.loads(line.split(" ", 1)[1])
a, b, storm = f["first"], f["second"], f["storm"]
distinct, pulls, interval = f["distinct_image_credentials"], f["distinct_pulls"], f["interval_s"]
rss_goal_mib = 64 if f["workloads"] <= 1000 else 128


def goal(ok):
    return "met" if ok else "MISSED"


def row(what, value, note=""):
    print(f"{what:<58}{value:>14}   {note}")


def phase(p, checks_goal=None, steady=False):
    if checks_goal is not None:
        row("  checks run", p["checks_run"],
            f"goal = distinct checks ({checks_goal}): {goal(p['checks_run'] == checks_goal)}; in {p['runs']} runs")
    else:
        row("  checks run", p["checks_run"], f"in {p['runs']} runs")
    row("  API requests: lists / watches / gets", f"{p['api_lists']} / {p['api_watches']} / {p['api_gets']}")
    per_pull = p["registry_requests"] / max(pulls, 1)
    row("  registry requests", p["registry_requests"],
        f"{p['registry_requests'] / max(p['checks_run'], 1):.2f} per check run; "
        f"{per_pull:.2f} per distinct (image, credentials) ({pulls})"
        + (f": goal <= 3: {goal(per_pull <= 3)}" if steady else ""))
    row("  peak RSS MiB so far", f"{p['peak_rss_kib'] / 1024:.1f}",
        f"goal <= {rss_goal_mib} MiB: {goal(p['peak_rss_kib'] <= rss_goal_mib * 1024)}; now {p['rss_kib'] / 1024:.1f}")


print(f"serve --watch: {f['workloads']} workloads ({f['containers']} containers; "
      f"{f['objects_served']} objects served with their pods and jobs) in {f['namespaces']} namespaces "
      f"({f['secret_namespaces']} with a pull Secret) over {f['images']} images, interval {interval} s")
row("distinct (image, pull-secret set): the checks", f["report_checks"],
    f"/report's summary.checks (the harness's own count: {distinct})")
row("distinct (image, credential bytes): the pulls", pulls,
    "the pod's ECR token for every image, the robot's for those Secret namespaces use")
print("first interval (from serve's start until every workload has a verdict)")
row("  seconds until every workload has a verdict", f"{a['seconds']:.1f}",
    f"goal <= 2 intervals ({2 * interval} s): {goal(a['seconds'] <= 2 * interval)}")
phase(a, f["report_checks"])
print("second interval (every check due again)")
row("  seconds for the round", f"{b['seconds']:.1f}")
phase(b, f["report_checks"], steady=True)
print(f"rollout storm: {storm['puts']} objects put, {storm['deletes']} deleted "
      f"({storm['created']} workloads created, {storm['deleted']} deleted)")
row("  seconds until every workload has a verdict again", f"{storm['phase']['seconds']:.1f}")
phase(storm["phase"])
row("  workload series on /metrics", storm["series"],
    f"= containers ({storm['containers']}): {goal(storm['series'] == storm['containers'])}")
row("peak RSS MiB, whole run", f"{f['peak_rss_kib'] / 1024:.1f}",
    f"goal <= {rss_goal_mib} MiB: {goal(f['peak_rss_kib'] <= rss_goal_mib * 1024)}; RSS at the end {f['rss_kib'] / 1024:.1f}")
row("every container available at the end", str(f["all_available"]).lower())
