#!/usr/bin/env bash
# kubectl for the running sandbox cluster (the newest sandbox-up.sh run): runs the project's
# kubectl inside the sandbox's network namespace with its admin credentials.
#   phase-3-backend-services/deploy/cluster/kubectl.sh get pods -A
set -euo pipefail
STATE="${LEARNFLOW_CLUSTER_RUNS:-/tmp/learnflow-cluster}/latest/state.env"
[[ -f "$STATE" ]] || { echo "no sandbox cluster is running (no $STATE)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE"
exec nsenter --target "$HOLDER_PID" --net -- "$BIN/kubectl" --kubeconfig "$KUBECONFIG" "$@"
