#!/usr/bin/env bash
# Pre-rollout gate: run the probe as a Job in the target namespace, under the ServiceAccount
# the workload will use, wait for it, print its report, and exit with the probe's code
# (0 every image pullable, 1 at least one is not, 2 the probe could not run as asked, 3 it
# could not tell: README, "Exit codes").
#
#   scripts/gate.sh -n NAMESPACE -s SERVICE_ACCOUNT [-p PROBE_IMAGE] [-t SECONDS]
#                   [-j JUNIT_FILE] [-m MARKDOWN_FILE] IMAGE...
#
# The Job is manifests/probe-job.yaml with its name, ServiceAccount, probe image and the
# images to check filled in. Needs kubectl with rights to create Jobs and read Pods and logs
# in NAMESPACE, and python3 with PyYAML. The JSON report goes to stdout; -j and -m write the
# CI's views of it, and with $GITHUB_STEP_SUMMARY set the Markdown is added to the job summary.
# Those are rendered from the report by `ecr-pull-probe render` ($ECR_PULL_PROBE_BIN, else on
# PATH, else the probe image through docker).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ns=""; sa=""; probe_image="${ECR_PULL_PROBE_IMAGE:-ghcr.io/example/ecr-pull-probe:0.1.0}"; timeout=300
junit=""; markdown=""
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "n:s:p:t:j:m:h" opt; do
  case "$opt" in
    n) ns=$OPTARG ;; s) sa=$OPTARG ;; p) probe_image=$OPTARG ;; t) timeout=$OPTARG ;;
    j) junit=$OPTARG ;; m) markdown=$OPTARG ;; *) usage ;;
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
work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT
kubectl logs -n "$ns" "$pod" -c probe | tee "$work/log"
code=$(kubectl get pod "$pod" -n "$ns" -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')
case "$code" in
  0|1|2|3) ;;
  *) echo "gate: the probe did not exit normally (exit code '${code}')" >&2; exit 2 ;;
esac

# The CI's views, rendered from the report in the log (which may also hold JSON log lines).
render() { # render FORMAT < report.json
  if [ -n "${ECR_PULL_PROBE_BIN:-}" ]; then "$ECR_PULL_PROBE_BIN" render --output "$1" -
  elif command -v ecr-pull-probe >/dev/null; then ecr-pull-probe render --output "$1" -
  elif command -v docker >/dev/null; then docker run --rm -i "$probe_image" render --output "$1" -
  else echo "gate: no ecr-pull-probe binary or docker to render $1" >&2; return 1
  fi
}
views=0
[ -n "$junit$markdown${GITHUB_STEP_SUMMARY:-}" ] && views=1
if [ "$views" = 1 ]; then
  python3 - "$work/log" > "$work/report.json" <<'PY' || { echo "gate: no report in the probe's log" >&2; exit 2; }
import json, sys
text = open(sys.argv[1]).read()
decoder, pos = json.JSONDecoder(), 0
for line in text.splitlines(keepends=True):
    if line.startswith("{"):
        try:
            obj, _ = decoder.raw_decode(text[pos:])
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "schema_version" in obj:
            json.dump(obj, sys.stdout)
            sys.exit(0)
    pos += len(line)
sys.exit(1)
PY
  # `render` exits with the saved run's own code, the probe's: any other code is a failure
  # to render. A view asked for by name must exist (exit 2 otherwise); the job summary is a
  # courtesy.
  rendered() { local rc=0; render "$1" < "$work/report.json" || rc=$?; [ "$rc" = "$code" ]; }
  if [ -n "$junit" ]; then rendered junit > "$junit" || exit 2; fi
  if [ -n "$markdown" ]; then rendered markdown > "$markdown" || exit 2; fi
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    rendered markdown >> "$GITHUB_STEP_SUMMARY" \
      || echo "gate: could not write the job summary" >&2
  fi
fi
exit "$code"
