#!/usr/bin/env python3
"""The canary's ValidatingAdmissionPolicy, evaluated: every matchCondition and validation of
manifests/rbac/canary-admission-policy.yaml is compiled and run by a real CEL interpreter on
admission requests, as the API server would run it (no API server runs here).

- The interpreter is cel-python (PyPI `cel-python`, cloud-custodian/cel-python): a pure-Python
  implementation of the CEL spec checked against its conformance suite. Kubernetes evaluates
  with cel-go plus its own libraries (strings, lists, regex, quantity, authz); the policy keeps
  to core CEL (listed in CORE below, each supported by both), and this script fails if an
  expression calls anything else, so a Kubernetes-only function cannot slip in untested.
- Requests: tests/fixtures/admission/*.json are AdmissionReview v1 bodies of the canary pod as
  src/paths/canary.rs builds it (`paths::canary::tests` keeps them in step), bare, and as the
  EKS pod identity webhook mutates it for IRSA and for EKS Pod Identity (mutating admission
  runs before validating). All must be admitted.
- Bypasses: each case below changes the IRSA canary the way an attacker holding the probe's
  token would (issue 23: a configMap at /dev that makes the command path exist, then host
  namespaces, privilege, hooks, probes...) and names the validation that must deny it.

A validation that errors denies (failurePolicy: Fail), as in the API server.
Usage: check_canary_policy.py POLICY.yaml FIXTURE_DIR. Prints `N passed, N failed`.
"""
import copy
import glob
import json
import os
import re
import sys

import celpy
import yaml

# Core CEL the policy may use: macros, functions and operators that cel-go (Kubernetes) and
# cel-python both implement as the CEL spec defines them.
CORE = {"has", "all", "exists", "exists_one", "size", "startsWith", "endsWith", "contains", "matches"}

CMD = "/dev/null/ecr-pull-probe-canary-never-runs"
WEBHOOK_MOUNT = "/var/run/secrets/eks.amazonaws.com/serviceaccount"


def load_policy(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    return policy


def functions_used(expr):
    return set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", expr))


class Policy:
    def __init__(self, doc):
        self.env = celpy.Environment()
        spec = doc["spec"]
        self.conditions = [(c["name"], self.compile(c["expression"])) for c in spec.get("matchConditions", [])]
        self.validations = [(v["message"], self.compile(v["expression"])) for v in spec["validations"]]
        self.used = set()
        for c in spec.get("matchConditions", []):
            self.used |= functions_used(c["expression"])
        for v in spec["validations"]:
            self.used |= functions_used(v["expression"])

    def compile(self, expr):
        return self.env.program(self.env.compile(expr))

    def denials(self, review):
        """The messages of the validations that deny this request ([] when admitted or not
        matched)."""
        req = review["request"]
        activation = celpy.json_to_cel({"request": req, "object": req["object"], "oldObject": req.get("oldObject")})
        for name, prog in self.conditions:
            try:
                if prog.evaluate(activation) != celpy.celtypes.BoolType(True):
                    return []
            except celpy.CELEvalError as e:
                # failurePolicy: Fail, as the API server does with an erroring condition.
                return [f"matchCondition {name} (evaluation error: {e})"]
        out = []
        for message, prog in self.validations:
            try:
                result = prog.evaluate(activation)
            except celpy.CELEvalError as e:
                out.append(f"{message} (evaluation error: {e})")
                continue
            if result != celpy.celtypes.BoolType(True):
                out.append(message)
        return out


def container(pod):
    return pod["spec"]["containers"][0]


def bypasses():
    """(name, how the IRSA canary is changed, the validation message that must deny it)."""
    def volume(v, mount=None, **m):
        def apply(pod):
            pod["spec"].setdefault("volumes", []).append(v)
            if mount:
                container(pod).setdefault("volumeMounts", []).append({"name": v["name"], "mountPath": mount, **m})
        return apply

    def sc(**kw):
        def apply(pod):
            container(pod).setdefault("securityContext", {}).update(kw)
        return apply

    def spec(**kw):
        return lambda pod: pod["spec"].update(kw)

    def field(**kw):
        return lambda pod: container(pod).update(kw)

    def webhook_mount(**kw):
        return lambda pod: container(pod)["volumeMounts"][0].update(kw)

    vols = "canary pods have no volumes but the pod identity webhook's projected tokens"
    mounts = "canary containers mount only the pod identity token, and nothing over the command path"
    priv = "canary containers are not privileged and add no capabilities"
    host = "canary pods share no host namespace"
    hooks = "canary containers have no lifecycle hooks and no probes"
    exec_ = {"exec": {"command": ["/bin/sh", "-c", "id"]}}
    return [
        # The issue's: the command path made to exist by a configMap item at /dev.
        ("configMap at /dev with an item at null/…", volume(
            {"name": "dev", "configMap": {"name": "payload", "defaultMode": 493,
                                          "items": [{"key": "run", "path": "null/ecr-pull-probe-canary-never-runs", "mode": 493}]}},
            "/dev"), vols),
        ("the same configMap: its mount alone", volume(
            {"name": "dev", "configMap": {"name": "payload"}}, "/dev"), mounts),
        ("a projected configMap at /dev", volume(
            {"name": "dev", "projected": {"sources": [{"configMap": {"name": "payload",
                                                                     "items": [{"key": "run", "path": "null/ecr-pull-probe-canary-never-runs", "mode": 493}]}}]}},
            "/dev"), vols),
        ("a token projected at the command's own name", volume(
            {"name": "dev", "projected": {"sources": [{"serviceAccountToken": {"path": "null/ecr-pull-probe-canary-never-runs"}}]}},
            "/dev"), vols),
        ("the webhook's token remounted at /dev", webhook_mount(mountPath="/dev"), mounts),
        ("the webhook's token at /dev/null", webhook_mount(mountPath="/dev/null"), mounts),
        ("the webhook's token at /", webhook_mount(mountPath="/"), mounts),
        ("the webhook's token with a subPath", webhook_mount(subPath="token"), mounts),
        ("an emptyDir at /dev/null/", volume({"name": "e", "emptyDir": {}}, "/dev/null/"), vols),
        ("a hostPath", volume({"name": "host", "hostPath": {"path": "/"}}, "/host"), vols),
        ("a hostPath not mounted", volume({"name": "host", "hostPath": {"path": "/"}}), vols),
        ("a raw block device", field(volumeDevices=[{"name": "aws-iam-token", "devicePath": CMD}]), mounts),
        ("privileged", sc(privileged=True), priv),
        ("an added capability", sc(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}), priv),
        ("a Windows host process container", sc(windowsOptions={"hostProcess": True}), priv),
        ("hostNetwork", spec(hostNetwork=True), host),
        ("hostPID", spec(hostPID=True), host),
        ("hostIPC", spec(hostIPC=True), host),
        ("a Windows host process pod", spec(securityContext={"windowsOptions": {"hostProcess": True}}), host),
        ("a postStart hook", field(lifecycle={"postStart": exec_}), hooks),
        ("a preStop hook", field(lifecycle={"preStop": exec_}), hooks),
        ("a liveness probe", field(livenessProbe=exec_), hooks),
        ("a readiness probe", field(readinessProbe=exec_), hooks),
        ("a startup probe", field(startupProbe=exec_), hooks),
        # The rules from before issue 23 still hold.
        ("a command from the image", field(command=["/bin/sh"]), "canary containers must not run anything from the image"),
        ("args", field(args=["-c", "id"]), "canary containers must not run anything from the image"),
        ("an init container", spec(initContainers=[{"name": "i", "image": "x", "command": ["/bin/sh"]}]), "canary pods have app containers only"),
        ("a token automount", spec(automountServiceAccountToken=True), "canary pods mount no ServiceAccount token"),
        ("not labelled as a canary", lambda pod: pod["metadata"]["labels"].pop("app.kubernetes.io/component"),
         "the ecr-pull-probe ServiceAccount may create only its canary pods"),
    ]


def main():
    policy_path, fixtures = sys.argv[1], sys.argv[2]
    policy = Policy(load_policy(policy_path))
    passed = failed = 0

    def check(name, problems):
        nonlocal passed, failed
        for p in problems:
            print(f"FAIL {name}: {p}")
        if problems:
            failed += 1
        else:
            passed += 1
            print(f"ok   {name}")

    unknown = policy.used - CORE
    check(f"the policy uses only core CEL ({', '.join(sorted(policy.used))})",
          [f"{sorted(unknown)}: not in the core set both cel-go and cel-python implement"] if unknown else [])

    reviews = {os.path.basename(p): json.load(open(p)) for p in sorted(glob.glob(os.path.join(fixtures, "*.json")))}
    if len(reviews) < 3:
        check("admission fixtures present", [f"only {sorted(reviews)} in {fixtures}"])
    for name, review in reviews.items():
        check(f"{name}: admitted", policy.denials(review))

    irsa = reviews["canary-irsa.json"]
    # Someone else's pod is not this policy's business (matchConditions).
    other = copy.deepcopy(irsa)
    other["request"]["userInfo"]["username"] = "system:serviceaccount:shop:deployer"
    container(other["request"]["object"])["command"] = ["/bin/sh"]
    check("another ServiceAccount's pod: not matched", policy.denials(other))

    for name, change, want in bypasses():
        review = copy.deepcopy(irsa)
        change(review["request"]["object"])
        got = policy.denials(review)
        check(f"denied: {name}", [] if want in got else [f"admitted or denied for other reasons ({got}); want {want!r}"])

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
