#!/usr/bin/env python3
"""RBAC of serve --watch (manifests/watch/): rules of its own, since the general rule (a
namespaced Role, Secrets only by resourceNames) cannot hold for a probe that must read the
pull secrets of workloads it has not seen yet.

Exactly what it needs and nothing more: list+watch on the six workload kinds, get on
serviceaccounts and secrets, no other verb, resource or wildcard; a ClusterRole only with a
ClusterRoleBinding to the probe's own ServiceAccount. Each check runs first on a known-bad
sample, so a check that cannot fail is caught.
Usage: check_watch_rbac.py RBAC.yaml [MORE.yaml ...]
"""
import sys

import yaml

NEEDED = {
    ("apps", "deployments"): {"list", "watch"},
    ("apps", "statefulsets"): {"list", "watch"},
    ("apps", "daemonsets"): {"list", "watch"},
    ("batch", "cronjobs"): {"list", "watch"},
    ("batch", "jobs"): {"list", "watch"},
    ("", "pods"): {"list", "watch"},
    ("", "serviceaccounts"): {"get"},
    ("", "secrets"): {"get"},
}


def problems(docs):
    out = []
    roles = [d for d in docs if d.get("kind") in ("Role", "ClusterRole")]
    if not roles:
        out.append("no Role or ClusterRole")
    for d in roles:
        where = f"{d['kind']}/{d['metadata']['name']}"
        granted = {}
        for rule in d.get("rules") or []:
            if rule.get("resourceNames") or rule.get("nonResourceURLs"):
                out.append(f"{where}: unexpected rule {rule}")
            for g in rule.get("apiGroups") or []:
                for r in rule.get("resources") or []:
                    if "*" in (g, r) or "*" in (rule.get("verbs") or []):
                        out.append(f"{where}: wildcard in {rule}")
                    granted.setdefault((g, r), set()).update(rule.get("verbs") or [])
        if granted != NEEDED:
            extra = {k: sorted(v - NEEDED.get(k, set())) for k, v in granted.items() if v - NEEDED.get(k, set())}
            missing = {k: sorted(v - granted.get(k, set())) for k, v in NEEDED.items() if v - granted.get(k, set())}
            out.append(f"{where}: grants beyond what --watch needs {extra}, or lacks {missing}")
    for b in [d for d in docs if d.get("kind") in ("RoleBinding", "ClusterRoleBinding")]:
        subjects = b.get("subjects") or []
        if [s.get("kind") for s in subjects] != ["ServiceAccount"] or subjects[0].get("name") != "ecr-pull-probe-watch":
            out.append(f"{b['kind']}/{b['metadata']['name']}: must bind only the probe's ServiceAccount, not {subjects}")
    return out


BAD = [{"kind": "ClusterRole", "metadata": {"name": "bad"}, "rules": [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["create"]}]},
    {"kind": "ClusterRoleBinding", "metadata": {"name": "bad"}, "subjects": [{"kind": "Group", "name": "system:authenticated"}]}]

failed = 0
if len(problems(BAD)) < 3:
    print(f"FAIL the watch RBAC check passes a broad role: {problems(BAD)}")
    failed += 1
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    found = problems(docs)
    for p in found:
        print(f"FAIL {path.rsplit('/', 1)[-1]}: {p}")
    failed += bool(found)
    if not found:
        print(f"ok   {path.rsplit('/', 1)[-1]}: watch RBAC is exactly list/watch on workloads, get on serviceaccounts and secrets")
sys.exit(1 if failed else 0)
