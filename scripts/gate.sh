#!/usr/bin/env bash
# Pre-rollout gate, kept for pipelines that call it: a thin wrapper around `ecr-pull-probe
# gate`, which does the work (a Job in NAMESPACE under SERVICE_ACCOUNT, wait, report, exit
# code; 0 every image pullable, 1 at least one is not, 2 the probe could not run as asked, 3
# it could not tell: README, "Exit codes").
# New pipelines call the binary directly (docs/diagnose-and-gate.md, "In CI: `gate`"); it needs only a kubeconfig.
#
#   scripts/gate.sh -n NAMESPACE -s SERVICE_ACCOUNT [-p PROBE_IMAGE] [-t SECONDS]
#                   [-j JUNIT_FILE] [-m MARKDOWN_FILE] IMAGE...
#
# The probe image comes from -p or $ECR_PULL_PROBE_IMAGE (no default: the image your nodes can
# pull). The binary is $ECR_PULL_PROBE_BIN, else ecr-pull-probe on PATH. The JSON report goes
# to stdout; with $GITHUB_STEP_SUMMARY set the Markdown view is added to the job summary.
set -euo pipefail

ns=""; sa=""; probe_image="${ECR_PULL_PROBE_IMAGE:-}"; timeout=300; junit=""; markdown=""
usage() { sed -n '7,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "n:s:p:t:j:m:h" opt; do
  case "$opt" in
    n) ns=$OPTARG ;; s) sa=$OPTARG ;; p) probe_image=$OPTARG ;; t) timeout=$OPTARG ;;
    j) junit=$OPTARG ;; m) markdown=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ -n "$ns" ] && [ -n "$sa" ] && [ $# -gt 0 ] || usage
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "gate: -t takes seconds" >&2; exit 2; }

bin="${ECR_PULL_PROBE_BIN:-$(command -v ecr-pull-probe || true)}"
[ -n "$bin" ] || { echo "gate: no ecr-pull-probe binary (set ECR_PULL_PROBE_BIN or put it on PATH)" >&2; exit 2; }
args=(gate -n "$ns" --service-account "$sa" --timeout "${timeout}s")
[ -n "$probe_image" ] && args+=(--probe-image "$probe_image")
[ -n "$junit" ] && args+=(--junit "$junit")
[ -n "$markdown" ] && args+=(--markdown "$markdown")
exec "$bin" "${args[@]}" "$@"
