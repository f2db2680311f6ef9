#!/usr/bin/env python3
"""Prints the watch benchmark's figures (the BENCH_WATCH line of tests/watch_scale.rs, on
stdin) with issue 12's goals: one check per distinct (image, credentials) per interval, every
workload with a verdict within two intervals, peak RSS <= 64 MiB."""
import json
import sys

line = next((l for l in sys.stdin if l.startswith("BENCH_WATCH ")), None)
if line is None:
    sys.exit("no BENCH_WATCH line from tests/watch_scale.rs")
f = json.loads(line.split(" ", 1)[1])
a, b = f["first"], f["second"]
distinct, interval = f["distinct_image_credentials"], f["interval_s"]


def goal(ok):
    return "met" if ok else "MISSED"


def row(what, value, note=""):
    print(f"{what:<58}{value:>14}   {note}")


print(f"serve --watch: {f['workloads']} workloads ({f['containers']} containers; "
      f"{f['objects_served']} objects served with their pods and jobs) over {f['images']} images, "
      f"interval {interval} s")
row("distinct (image, credentials)", distinct, f"/report's summary.checks: {f['report_checks']}")
print("first interval (from serve's start until every workload has a verdict)")
row("  seconds until every workload has a verdict", f"{a['seconds_to_every_verdict']:.1f}",
    f"goal <= 2 intervals ({2 * interval} s): {goal(a['seconds_to_every_verdict'] <= 2 * interval)}")
row("  checks run", a["checks_run"],
    f"goal = distinct pairs ({distinct}): {goal(a['checks_run'] == distinct)}; in {a['runs']} runs")
row("  API requests: lists / watches / gets", f"{a['api_lists']} / {a['api_watches']} / {a['api_gets']}")
row("  registry requests", a["registry_requests"], f"{a['registry_requests'] / max(a['checks_run'], 1):.2f} per check")
row("  peak RSS MiB", f"{a['peak_rss_kib'] / 1024:.1f}")
print("second interval (every check due again)")
row("  checks run", b["checks_run"],
    f"goal = distinct pairs ({distinct}): {goal(b['checks_run'] == distinct)}; in {b['runs']} runs")
row("  API requests: lists / watches / gets", f"{b['api_lists']} / {b['api_watches']} / {b['api_gets']}")
row("  registry requests", b["registry_requests"], f"{b['registry_requests'] / max(b['checks_run'], 1):.2f} per check")
row("peak RSS MiB, whole run", f"{f['peak_rss_kib'] / 1024:.1f}",
    f"goal <= 64 MiB: {goal(f['peak_rss_kib'] <= 64 * 1024)}; RSS at the end {f['rss_kib'] / 1024:.1f}")
row("every container available at the end", str(f["all_available"]).lower())
