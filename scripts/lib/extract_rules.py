#!/usr/bin/env python3
"""The plain Prometheus rules file inside a PrometheusRule (its `spec`), for promtool.

Usage: extract_rules.py PROMETHEUSRULE.yaml OUT.yaml
Exactly one PrometheusRule is expected in the input; its spec.groups are written as they are.
"""
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
if len(rules) != 1:
    sys.exit(f"{sys.argv[1]}: expected one PrometheusRule, found {len(rules)}")
groups = rules[0].get("spec", {}).get("groups")
if not groups:
    sys.exit(f"{sys.argv[1]}: the PrometheusRule has no spec.groups")
with open(sys.argv[2], "w") as out:
    yaml.safe_dump({"groups": groups}, out, sort_keys=False)
