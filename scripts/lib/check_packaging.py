#!/usr/bin/env python3
"""Offline checks of what ships: the rendered manifests and the Dockerfile.

- every pod spec is admissible under Kubernetes' `restricted` Pod Security level and
  OpenShift's `restricted-v2` SCC (no runAsUser: the namespace's range assigns one);
- Jobs and CronJobs carry the policies a gate needs (no retries, deadlines, cleanup);
- the PodMonitor and the Service select the sidecar pods and name their metrics port;
- the Dockerfile's final stage runs as a numeric non-root user, copies only the binary from
  the build stage, and the build uses --locked;
- the per-node DaemonSet (manifests/node/, --node FILE) by rules of its own: it is not
  `restricted` (host network, hostPath), so the restricted checks are not applied to it;
  instead only the known credential-provider directories, each read-only, and everything else
  still denied; its OpenShift SCC grants exactly that and its Role only `use` of it.

Each check is also run on a known-bad sample first, so a check that cannot fail is caught.
Usage: check_packaging.py RENDERED.yaml [MORE.yaml ...] --dockerfile Dockerfile [--node NODE.yaml ...]
Prints one line per problem and a closing `N passed, N failed`.
"""
import argparse
import re
import sys

import yaml

# restricted-v2 (openshift/cluster-kube-apiserver-operator bindata) allowed volume types.
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                   "persistentVolumeClaim", "projected", "secret"}


def pod_specs(doc):
    """(where, pod spec) for every pod template in a workload object."""
    kind = doc.get("kind")
    name = f"{kind}/{doc.get('metadata', {}).get('name')}"
    spec = doc.get("spec") or {}
    if kind == "Pod":
        yield name, spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield name, spec.get("template", {}).get("spec", {})
    elif kind == "CronJob":
        yield name, spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})


def pod_security_problems(where, pod):
    out = []
    psc = pod.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            out.append(f"{where}: {host} is not allowed")
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            out.append(f"{where}: volume {v.get('name')} of type {sorted(kinds)} is not allowed by restricted-v2")
    if "runAsUser" in psc or "fsGroup" in psc:
        out.append(f"{where}: pod securityContext sets runAsUser/fsGroup; OpenShift assigns them from the namespace range")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{cw}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{cw}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{cw}: capabilities.drop must include ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{cw}: adds capabilities {caps.get('add')}")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{cw}: readOnlyRootFilesystem must be true")
        if not (sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)):
            out.append(f"{cw}: runAsNonRoot must be true")
        if "runAsUser" in sc:
            out.append(f"{cw}: sets runAsUser; OpenShift assigns it from the namespace range")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{cw}: seccompProfile must be RuntimeDefault")
        res = c.get("resources") or {}
        if not (res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
            out.append(f"{cw}: memory request and limit must be set")
    return out


# The kubelet credential provider directories the node DaemonSet may mount (read-only), and
# where they come from: EKS AL2023/AL2 (awslabs/amazon-eks-ami nodeadm/internal/kubelet/
# image-credential-provider.go, templates/al2/runtime/kubelet.service) and OpenShift/ROSA
# (openshift/machine-config-operator pkg/controller/template/render.go).
NODE_HOST_PATHS = {"/etc/eks/image-credential-provider",
                   "/etc/kubernetes/credential-providers",
                   "/usr/libexec/kubelet-image-credential-provider-plugins"}
# The one host file mounted as a file: the node-wide docker config. A single-file mount keeps
# the inode it was made with after the host renames a new file over it; the probe detects that
# (link count 0: NODE_DOCKER_CONFIG_REPLACED) and fails /healthz, so the kubelet restarts the
# container onto the new file. Mounting /var/lib/kubelet instead would expose every pod's
# volumes on the node.
NODE_HOST_FILES = {"/var/lib/kubelet/config.json"}
NODE_PROVIDER_ENV = ("ECR_PULL_PROBE_CREDENTIAL_PROVIDER_CONFIG", "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_BIN_DIR")


def node_problems(doc):
    """The per-node DaemonSet: the two inherent exceptions (host network, the provider's host
    directories read-only) and nothing else of what `restricted` forbids."""
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    out = []
    if doc.get("kind") != "DaemonSet":
        return [f"{where}: the node probe must be a DaemonSet (one per node)"]
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    psc = pod.get("securityContext") or {}
    if pod.get("hostNetwork") is not True:
        out.append(f"{where}: hostNetwork must be true (the plugin reaches IMDS as the kubelet does)")
    if pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        out.append(f"{where}: dnsPolicy must be ClusterFirstWithHostNet with hostNetwork")
    for host in ("hostPID", "hostIPC"):
        if pod.get(host):
            out.append(f"{where}: {host} is not allowed")
    if pod.get("automountServiceAccountToken") is not False:
        out.append(f"{where}: automountServiceAccountToken must be false (serve needs no API access)")
    if not any(t.get("operator") == "Exists" and not t.get("key") for t in pod.get("tolerations") or []):
        out.append(f"{where}: a toleration with operator Exists and no key is needed to run on every node")
    if "runAsUser" in psc and psc["runAsUser"] == 0:
        out.append(f"{where}: runs as root")
    host_vols = set()
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if "hostPath" in kinds:
            host_vols.add(v.get("name"))
            hp = v["hostPath"]
            if hp.get("path") in NODE_HOST_FILES:
                if hp.get("type") != "File":
                    out.append(f"{where}: hostPath {hp.get('path')!r} must have type File (never created on the host)")
                continue
            if hp.get("path") not in NODE_HOST_PATHS:
                out.append(f"{where}: hostPath {hp.get('path')!r} is not a known credential provider directory {sorted(NODE_HOST_PATHS)}")
            if hp.get("type") != "Directory":
                out.append(f"{where}: hostPath {hp.get('path')!r} must have type Directory (never create on the host, never a single file)")
        elif not kinds <= ALLOWED_VOLUMES:
            out.append(f"{where}: volume {v.get('name')} of type {sorted(kinds)} is not allowed")
    if not host_vols:
        out.append(f"{where}: no hostPath volume: the node's provider config and plugins are not mounted")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    containers = (pod.get("containers") or []) + (pod.get("initContainers") or [])
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{cw}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{cw}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{cw}: capabilities.drop must include ALL")
        if caps.get("add"):
            out.append(f"{cw}: adds capabilities {caps.get('add')} (reading 0644 files and running a 0755 plugin needs none)")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{cw}: readOnlyRootFilesystem must be true")
        if not (sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)):
            out.append(f"{cw}: runAsNonRoot must be true")
        if sc.get("runAsUser") == 0:
            out.append(f"{cw}: runs as root")
        if ((sc.get("seccompProfile") or {}).get("type") or pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            out.append(f"{cw}: seccompProfile must be RuntimeDefault")
        res = c.get("resources") or {}
        if not (res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
            out.append(f"{cw}: memory request and limit must be set")
        mounts = {m.get("name"): m for m in c.get("volumeMounts") or []}
        for name, m in mounts.items():
            if name in host_vols and m.get("readOnly") is not True:
                out.append(f"{cw}: hostPath mount {m.get('mountPath')} must be readOnly")
            if name in host_vols and m.get("mountPropagation") not in (None, "None"):
                out.append(f"{cw}: hostPath mount {m.get('mountPath')} must not propagate mounts")
    probe = [c for c in pod.get("containers") or [] if c.get("name") == "probe"]
    if not probe:
        return out + [f"{where}: no container named probe"]
    env = {e.get("name"): e for e in probe[0].get("env") or []}
    node = (((env.get("ECR_PULL_PROBE_NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if node != "spec.nodeName":
        out.append(f"{where}: ECR_PULL_PROBE_NODE_NAME must come from the downward API (fieldRef spec.nodeName)")
    ro_mounts = [m.get("mountPath", "").rstrip("/") for n, m in {m.get("name"): m for m in probe[0].get("volumeMounts") or []}.items()
                 if n in host_vols and m.get("readOnly") is True]
    for k in NODE_PROVIDER_ENV:
        val = (env.get(k) or {}).get("value") or ""
        if not any(val == p or val.startswith(p + "/") for p in ro_mounts):
            out.append(f"{where}: {k}={val!r} is not under a read-only hostPath mount of the probe")
    if "args" in probe[0] and probe[0]["args"][:1] != ["serve"]:
        out.append(f"{where}: the probe must run `serve`")
    return out


def scc_problems(doc):
    """The node SCC: restricted-v2 plus the host network and hostPath, nothing else."""
    where = f"SecurityContextConstraints/{doc.get('metadata', {}).get('name')}"
    out = []
    for k in ("allowPrivilegedContainer", "allowPrivilegeEscalation", "allowHostPID", "allowHostIPC"):
        if doc.get(k) is not False:
            out.append(f"{where}: {k} must be false")
    if doc.get("allowedCapabilities") or doc.get("defaultAddCapabilities"):
        out.append(f"{where}: grants capabilities")
    if "ALL" not in (doc.get("requiredDropCapabilities") or []):
        out.append(f"{where}: requiredDropCapabilities must be [ALL]")
    if (doc.get("runAsUser") or {}).get("type") not in ("MustRunAsRange", "MustRunAsNonRoot"):
        out.append(f"{where}: runAsUser must be MustRunAsRange or MustRunAsNonRoot")
    if (doc.get("seLinuxContext") or {}).get("type") != "MustRunAs":
        out.append(f"{where}: seLinuxContext must be MustRunAs")
    if doc.get("seccompProfiles") != ["runtime/default"]:
        out.append(f"{where}: seccompProfiles must be [runtime/default]")
    if doc.get("readOnlyRootFilesystem") is not True:
        out.append(f"{where}: readOnlyRootFilesystem must be true")
    extra = set(doc.get("volumes") or []) - ALLOWED_VOLUMES - {"hostPath"}
    if extra or "*" in (doc.get("volumes") or []):
        out.append(f"{where}: volumes beyond restricted-v2's and hostPath: {sorted(extra)}")
    if doc.get("users") or doc.get("groups"):
        out.append(f"{where}: granted to users/groups directly; grant `use` through a Role")
    return out


def job_problems(doc):
    out = []
    kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
    where = f"{kind}/{name}"
    if kind == "CronJob":
        spec = doc.get("spec", {})
        if spec.get("concurrencyPolicy") != "Forbid":
            out.append(f"{where}: concurrencyPolicy must be Forbid")
        for k in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            if k not in spec:
                out.append(f"{where}: {k} must be set")
        job = spec.get("jobTemplate", {}).get("spec", {})
    elif kind == "Job":
        job = doc.get("spec", {})
    else:
        return out
    if job.get("backoffLimit") != 0:
        out.append(f"{where}: backoffLimit must be 0 (a retry would hide the verdict)")
    for k in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if k not in job:
            out.append(f"{where}: {k} must be set")
    pod = job.get("template", {}).get("spec", {})
    if pod.get("restartPolicy") != "Never":
        out.append(f"{where}: restartPolicy must be Never")
    for c in pod.get("containers") or []:
        if c.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            out.append(f"{where} container {c.get('name')}: terminationMessagePolicy must be FallbackToLogsOnError")
    return out


def monitoring_problems(docs):
    out = []
    pods = [(d, t) for d in docs for _, t in [(None, d.get("spec", {}).get("template", {}))] if d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet")]
    for d in docs:
        if d.get("kind") not in ("PodMonitor", "Service"):
            continue
        sel = d["spec"].get("selector", {})
        sel = sel.get("matchLabels", sel) if d["kind"] == "PodMonitor" else sel
        port = (d["spec"].get("podMetricsEndpoints") or [{}])[0].get("port") if d["kind"] == "PodMonitor" else d["spec"]["ports"][0].get("targetPort")
        matched = [t for _, t in pods if sel.items() <= (t.get("metadata", {}).get("labels") or {}).items()]
        if not matched:
            out.append(f"{d['kind']}/{d['metadata']['name']}: selector {sel} matches no pod template")
        for t in matched:
            names = {p.get("name") for c in t["spec"]["containers"] for p in c.get("ports") or []}
            if port not in names:
                out.append(f"{d['kind']}/{d['metadata']['name']}: port {port} is not a named container port")
    return out


def network_policy_problems(docs):
    """Every `serve` pod off the host network (its /report is the cluster's map) is selected by
    a NetworkPolicy of its namespace that admits ingress only from chosen peers on its ports."""
    out = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    for d in docs:
        if d.get("kind") not in ("Deployment", "StatefulSet", "Pod"):
            continue
        t = d["spec"].get("template", d) if d["kind"] != "Pod" else d
        spec, labels = t.get("spec", {}), (t.get("metadata", {}).get("labels") or {})
        if spec.get("hostNetwork") or not any((c.get("args") or [None])[0] == "serve" for c in spec.get("containers", [])):
            continue
        where = f"{d['kind']}/{d['metadata']['name']}"
        ns = d["metadata"].get("namespace")
        ports = {p.get("containerPort") for c in spec["containers"] for p in c.get("ports") or []}
        mine = [p for p in policies if p["metadata"].get("namespace") == ns
                and (p["spec"].get("podSelector", {}).get("matchLabels") or {}).items() <= labels.items()
                and "Ingress" in (p["spec"].get("policyTypes") or [])]
        if not mine:
            out.append(f"{where}: serves /report and /metrics but no NetworkPolicy of its namespace selects it")
        for p in mine:
            for rule in p["spec"].get("ingress") or []:
                if not rule.get("from"):
                    out.append(f"NetworkPolicy/{p['metadata']['name']}: an ingress rule admits every peer")
                if not {q.get("port") for q in rule.get("ports") or []} <= ports or not rule.get("ports"):
                    out.append(f"NetworkPolicy/{p['metadata']['name']}: ingress ports are not exactly {where}'s")
    return out


def rbac_problems(docs):
    """Least privilege: no wildcards, secrets only by name, writes only on the canary's pods."""
    out = []
    for d in docs:
        if d.get("kind") not in ("Role", "ClusterRole"):
            continue
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ClusterRole":
            out.append(f"{where}: a namespaced Role is enough")
        for rule in d.get("rules") or []:
            res, verbs = rule.get("resources") or [], set(rule.get("verbs") or [])
            if "*" in res or "*" in verbs or "*" in (rule.get("apiGroups") or []):
                out.append(f"{where}: wildcard in {rule}")
            if "secrets" in res and not rule.get("resourceNames"):
                out.append(f"{where}: secrets must be limited by resourceNames")
            writes = verbs - {"get", "list", "watch"}
            # A TokenRequest is a `create` on the token subresource: allowed for named
            # ServiceAccounts only (KEP-4412 providers need the workload's token).
            token_request = res == ["serviceaccounts/token"] and writes == {"create"}
            if token_request and not rule.get("resourceNames"):
                out.append(f"{where}: serviceaccounts/token must be limited by resourceNames")
            elif writes and res != ["pods"] and not token_request:
                out.append(f"{where}: write verbs {sorted(writes)} on {res}")
    return out


def caller_rbac_problems(docs):
    """manifests/rbac/diagnose.yaml, the person's rights for diagnose/gate: namespaced Roles,
    no wildcards, no secrets, writes only to run and delete the probe's Job (create/delete
    jobs, delete pods), the pod proxy only with `get` and only in the node DaemonSet's
    namespace."""
    out = []
    allowed_writes = {("batch", "jobs"): {"create", "delete"}, ("", "pods"): {"delete"}}
    for d in docs:
        if d.get("kind") not in ("Role", "ClusterRole"):
            continue
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ClusterRole":
            out.append(f"{where}: a namespaced Role is enough")
        for rule in d.get("rules") or []:
            groups, res, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], set(rule.get("verbs") or [])
            if "*" in res or "*" in verbs or "*" in groups:
                out.append(f"{where}: wildcard in {rule}")
            if "secrets" in res:
                out.append(f"{where}: diagnose reads no Secret itself")
            for g in groups:
                for r in res:
                    writes = verbs - {"get", "list", "watch"}
                    extra = writes - allowed_writes.get((g, r), set())
                    if extra:
                        out.append(f"{where}: write verbs {sorted(extra)} on {g or 'core'}/{r}")
                    if r in ("pods/proxy", "nodes/proxy", "services/proxy"):
                        if r != "pods/proxy" or verbs != {"get"}:
                            out.append(f"{where}: only `get` on pods/proxy, not {sorted(verbs)} on {r}")
                        if d["metadata"].get("namespace") != "ecr-pull-probe-node":
                            out.append(f"{where}: the pod proxy only in the node DaemonSet's namespace")
    return out


def node_rbac_problems(docs):
    """The node overlay's RBAC: a namespaced Role, `use` of named SCCs and nothing else."""
    out = []
    for d in docs:
        if d.get("kind") not in ("Role", "ClusterRole"):
            continue
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ClusterRole":
            out.append(f"{where}: a namespaced Role is enough")
        for rule in d.get("rules") or []:
            if (rule.get("apiGroups") != ["security.openshift.io"] or rule.get("resources") != ["securitycontextconstraints"]
                    or rule.get("verbs") != ["use"] or not rule.get("resourceNames")):
                out.append(f"{where}: only `use` of a named SCC is needed, not {rule}")
    return out


POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"


def sharded_problems(docs):
    """manifests/watch-sharded/: a StatefulSet whose pods take --shard from their ordinal (the
    pod-index label, downward API) and whose --total-shards equals its replicas."""
    sets = [d for d in docs if d.get("kind") == "StatefulSet"]
    if not sets:
        return ["no StatefulSet"]
    out = []
    for d in sets:
        where = f"StatefulSet/{d['metadata']['name']}"
        if any(x.get("kind") == "Deployment" for x in docs):
            out.append(f"{where}: the unsharded Deployment is still rendered beside it")
        replicas = (d.get("spec") or {}).get("replicas", 1)
        for c in d["spec"]["template"]["spec"].get("containers", []):
            env = {e["name"]: e for e in c.get("env") or []}
            if "--watch" not in (c.get("args") or []):
                out.append(f"{where}: {c['name']}: not serve --watch")
            shard = (env.get("ECR_PULL_PROBE_SHARD") or {}).get("valueFrom", {}).get("fieldRef", {})
            if shard.get("fieldPath") != POD_INDEX:
                out.append(f"{where}: {c['name']}: ECR_PULL_PROBE_SHARD is not the downward API's {POD_INDEX}")
            total = (env.get("ECR_PULL_PROBE_TOTAL_SHARDS") or {}).get("value")
            if total != str(replicas):
                out.append(f"{where}: {c['name']}: ECR_PULL_PROBE_TOTAL_SHARDS {total!r} is not spec.replicas {replicas}")
    return out


BAD_SHARDED = [{"kind": "StatefulSet", "metadata": {"name": "bad"}, "spec": {"replicas": 3, "template": {"spec": {
    "containers": [{"name": "probe", "args": ["serve"], "env": [
        {"name": "ECR_PULL_PROBE_SHARD", "value": "0"},
        {"name": "ECR_PULL_PROBE_TOTAL_SHARDS", "value": "2"}]}]}}}},
    {"kind": "Deployment", "metadata": {"name": "left"}}]


def dockerfile_problems(text):
    out = []
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    stages = []
    for l in lines:
        if l.upper().startswith("FROM "):
            stages.append([l])
        elif stages:
            stages[-1].append(l)
    if len(stages) < 2:
        return ["Dockerfile: expected a build stage and a runtime stage"]
    for s in stages:
        if "@sha256:" not in s[0]:
            out.append(f"Dockerfile: pin the base by digest (tag@sha256:...): {s[0]}")
    if not any("cargo build" in l and "--release" in l and "--locked" in l for s in stages[:-1] for l in s):
        out.append("Dockerfile: the build must run cargo build --release --locked")
    final = stages[-1]
    users = [l.split(None, 1)[1] for l in final if l.upper().startswith("USER ")]
    if not users:
        out.append("Dockerfile: the final stage must set USER")
    else:
        uid = users[-1].split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            out.append(f"Dockerfile: USER {users[-1]} must be a numeric non-root uid")
    for l in final[1:]:
        verb = l.split(None, 1)[0].upper()
        if verb in ("RUN", "ADD"):
            out.append(f"Dockerfile: the final stage must not {verb}: {l}")
        if verb == "COPY":
            m = re.match(r"COPY\s+--from=\S+\s+(\S+)\s+\S+$", l, re.I)
            if not m or not (m.group(1).endswith("/ecr-pull-probe") or "ca-certificates" in m.group(1)):
                out.append(f"Dockerfile: the final stage may copy only the binary (and a CA bundle): {l}")
    return out


BAD_POD = {"kind": "Job", "metadata": {"name": "bad"}, "spec": {"backoffLimit": 6, "template": {"spec": {
    "securityContext": {"runAsUser": 1000}, "hostNetwork": True, "restartPolicy": "OnFailure",
    "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    "containers": [{"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}]}}}}
BAD_NODE = {"kind": "DaemonSet", "metadata": {"name": "bad"}, "spec": {"template": {"spec": {
    "hostPID": True, "securityContext": {"runAsUser": 0},
    "volumes": [{"name": "root", "hostPath": {"path": "/", "type": "DirectoryOrCreate"}}],
    "containers": [{"name": "probe", "args": ["check"],
                    "env": [{"name": "ECR_PULL_PROBE_NODE_NAME", "value": "n1"},
                            {"name": "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_CONFIG", "value": "/etc/config.json"}],
                    "volumeMounts": [{"name": "root", "mountPath": "/host", "mountPropagation": "Bidirectional"}],
                    "securityContext": {"privileged": True, "capabilities": {"add": ["DAC_OVERRIDE"]}}}]}}}}
BAD_SCC = {"kind": "SecurityContextConstraints", "metadata": {"name": "bad"}, "allowPrivilegedContainer": True,
           "allowHostPID": True, "allowedCapabilities": ["*"], "runAsUser": {"type": "RunAsAny"},
           "volumes": ["*"], "users": ["system:serviceaccount:x:y"]}
BAD_DOCKERFILE = "FROM rust AS b\nRUN cargo build --release\nFROM debian\nRUN apt-get update\nCOPY . /app\nUSER root\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--node", action="append", default=[], help="rendered manifests/node/ output (own rules)")
    ap.add_argument("--caller-rbac", help="manifests/rbac/diagnose.yaml (own rules)")
    ap.add_argument("--sharded", help="rendered manifests/watch-sharded/ pods (own rules too)")
    args = ap.parse_args()
    passed, failed = 0, 0

    def check(name, problems):
        nonlocal passed, failed
        for p in problems:
            print(f"FAIL {p}")
        if problems:
            failed += 1
        else:
            passed += 1
            print(f"ok   {name}")

    # The checks must catch known-bad input.
    bad = [p for w, s in pod_specs(BAD_POD) for p in pod_security_problems(w, s)] + job_problems(BAD_POD)
    check("pod and job checks reject a bad Job", [] if len(bad) >= 12 else [f"only {len(bad)} problems found in the bad sample: {bad}"])
    check("Dockerfile check rejects a bad Dockerfile", [] if len(dockerfile_problems(BAD_DOCKERFILE)) >= 4 else ["the bad Dockerfile passed"])

    docs = [d for f in args.files for d in yaml.safe_load_all(open(f)) if d]
    specs = [(w, s) for d in docs for w, s in pod_specs(d)]
    if not specs:
        check("manifests have pod specs", ["no pod spec found"])
    for where, spec in specs:
        check(f"{where}: restricted / restricted-v2", pod_security_problems(where, spec))
    for d in docs:
        if d.get("kind") in ("Job", "CronJob"):
            check(f"{d['kind']}/{d['metadata']['name']}: job policies", job_problems(d))
    check("PodMonitor and Service select the sidecar's metrics port", monitoring_problems(docs))
    bad_serve = [{"kind": "Deployment", "metadata": {"name": "bad"}, "spec": {"template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"args": ["serve"], "ports": [{"containerPort": 9090}]}]}}}},
        {"kind": "NetworkPolicy", "metadata": {"name": "open"}, "spec": {"podSelector": {"matchLabels": {"a": "c"}}, "policyTypes": ["Ingress"]}}]
    check("NetworkPolicy check rejects an unselected serve pod", [] if network_policy_problems(bad_serve) else ["the unselected pod passed"])
    check("every serve pod is behind a NetworkPolicy", network_policy_problems(docs))
    bad_rbac = [{"kind": "ClusterRole", "metadata": {"name": "bad"}, "rules": [
        {"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["get", "delete"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]}]
    check("RBAC check rejects a broad role", [] if len(rbac_problems(bad_rbac)) >= 5 else ["the broad role passed"])
    if not any(d.get("kind") == "Role" for d in docs):
        check("RBAC manifests present", ["no Role found"])
    check("RBAC is least privilege", rbac_problems(docs))
    check("Dockerfile", dockerfile_problems(open(args.dockerfile).read()))

    # The caller's rights for diagnose and gate (manifests/rbac/diagnose.yaml).
    if args.caller_rbac:
        bad_caller = [{"kind": "Role", "metadata": {"name": "bad"}, "rules": [
            {"apiGroups": [""], "resources": ["pods/proxy", "secrets"], "verbs": ["get", "create"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["*"]}]}]
        check("caller RBAC check rejects a broad role", [] if len(caller_rbac_problems(bad_caller)) >= 5 else [f"the broad role passed: {caller_rbac_problems(bad_caller)}"])
        cdocs = [d for d in yaml.safe_load_all(open(args.caller_rbac)) if d]
        check("caller RBAC (diagnose, gate) is least privilege", caller_rbac_problems(cdocs))

    # The per-node DaemonSet: its own rules, never the restricted ones above.
    if args.node:
        bad = node_problems(BAD_NODE)
        check("node check rejects a bad DaemonSet", [] if len(bad) >= 22 else [f"only {len(bad)} problems found in the bad sample: {bad}"])
        check("SCC check rejects a broad SCC", [] if len(scc_problems(BAD_SCC)) >= 12 else [f"the broad SCC passed: {scc_problems(BAD_SCC)}"])
        bad_scc_role = [{"kind": "Role", "metadata": {"name": "bad"}, "rules": [
            {"apiGroups": ["security.openshift.io"], "resources": ["securitycontextconstraints"], "verbs": ["use"]}]}]
        check("node RBAC check rejects an SCC grant without resourceNames", [] if node_rbac_problems(bad_scc_role) else ["the unnamed SCC grant passed"])
        all_node = []
        for path in args.node:
            f = path.rsplit("/", 1)[-1]
            ndocs = [d for d in yaml.safe_load_all(open(path)) if d]
            all_node += ndocs
            for d in ndocs:
                if d.get("kind") == "DaemonSet":
                    check(f"{f}: {d['kind']}/{d['metadata']['name']}: node rules", node_problems(d))
                if d.get("kind") == "SecurityContextConstraints":
                    check(f"{f}: SecurityContextConstraints/{d['metadata']['name']}: restricted-v2 + hostNetwork + hostPath only", scc_problems(d))
                if d.get("kind") == "Namespace":
                    lvl = (d.get("metadata", {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce")
                    check(f"{f}: Namespace/{d['metadata']['name']}: Pod Security level stated",
                          [] if lvl == "privileged" else [f"enforce label is {lvl!r}; hostNetwork and hostPath need privileged (baseline forbids both)"])
            if any(d.get("kind") in ("Role", "ClusterRole") for d in ndocs):
                check(f"{f}: node RBAC grants only the SCC's use", node_rbac_problems(ndocs))
        kinds = {d.get("kind") for d in all_node}
        missing = {"DaemonSet", "Namespace", "SecurityContextConstraints", "PodMonitor"} - kinds
        check("node manifests: DaemonSet, Namespace, SCC and PodMonitor present", [f"missing {sorted(missing)}"] if missing else [])
        check("node PodMonitor selects the DaemonSet's metrics port", monitoring_problems(all_node))
    # serve --watch sharded: the shard from the pod's ordinal, the total from the replicas.
    if args.sharded:
        check("sharded check rejects a bad StatefulSet", [] if len(sharded_problems(BAD_SHARDED)) >= 4 else [f"the bad StatefulSet passed: {sharded_problems(BAD_SHARDED)}"])
        sdocs = [d for d in yaml.safe_load_all(open(args.sharded)) if d]
        check("watch-sharded: the shard from the pod index, the total from the replicas", sharded_problems(sdocs))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
