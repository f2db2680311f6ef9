#!/usr/bin/env bash
# Pre-rollout gate: run the probe as a Job in the target namespace, under the ServiceAccount
# the workload will use, wait for it, print its report, and exit with the probe's code
# (0 every image pullable, 1 at least one is not, 2 the probe could not run as asked).
#
#   scripts/gate.sh -n NAMESPACE -s SERVICE_ACCOUNT [-p PROBE_IMAGE] [-t SECONDS] IMAGE...
#
# The Job is manifests/probe-job.yaml with its name, ServiceAccount, probe image and the
# images to check filled in. Needs kubectl with rights to create Jobs and read Pods and logs
# in NAMESPACE, and python3 with PyYAML.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ns=""; sa=""; probe_image="${ECR_PULL_PROBE_IMAGE:-ghcr.io/example/ecr-pull-probe:0.1.0}"; timeout=300
usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "n:s:p:t:h" opt; do
  case "$opt" in
    n) ns=$OPTARG ;; s) sa=$OPTARG ;; p) probe_image=$OPTARG ;; t) timeout=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ -n "$ns" ] && [ -n "$sa" ] && [ $# -gt 0 ] || usage
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "gate: -t takes seconds" >&2; exit 2; }

name="ecr-pull-probe-gate-$(date +%s)-$RANDOM"
images=$(IFS=,; echo "$*")
python3 - "$root/manifests/probe-job.yaml" "$name" "$sa" "$probe_image" "$images" "$timeout" <<'PY' | kubectl apply -n "$ns" -f - >&2
import sys, yaml
path, name, sa, image, images, timeout = sys.argv[1:]
job = yaml.safe_load(open(path))
job["metadata"]["name"] = name
job["spec"]["activeDeadlineSeconds"] = int(timeout)
pod = job["spec"]["template"]["spec"]
pod["serviceAccountName"] = sa
c = pod["containers"][0]
c["image"] = image
c["env"] = [e for e in c.get("env", []) if e["name"] not in ("ECR_PULL_PROBE_IMAGES", "ECR_PULL_PROBE_TIMEOUT")]
c["env"] += [{"name": "ECR_PULL_PROBE_IMAGES", "value": images},
             {"name": "ECR_PULL_PROBE_TIMEOUT", "value": f"{max(int(timeout) - 30, 10)}s"}]
print(yaml.safe_dump(job))
PY

cleanup() { kubectl delete job "$name" -n "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
end=$((SECONDS + timeout + 30))
while :; do
  state=$(kubectl get job "$name" -n "$ns" -o jsonpath='{.status.succeeded}/{.status.failed}')
  case "$state" in
    1/*|*/1) break ;;
  esac
  if [ $SECONDS -ge $end ]; then
    echo "gate: job $name did not finish within ${timeout}s" >&2
    exit 2
  fi
  sleep 2
done
pod=$(kubectl get pods -n "$ns" -l "job-name=$name" -o jsonpath='{.items[0].metadata.name}')
kubectl logs -n "$ns" "$pod" -c probe
code=$(kubectl get pod "$pod" -n "$ns" -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')
case "$code" in
  0|1|2) exit "$code" ;;
  *) echo "gate: the probe did not exit normally (exit code '${code}')" >&2; exit 2 ;;
esac
