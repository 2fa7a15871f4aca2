#!/usr/bin/env bash
# Tears down what minikube-up.sh made. Default: deletes the whole Minikube profile.
# --keep-cluster: keeps Minikube and removes, together, everything that holds LearnFlow data or
# its credentials: the phase-3-backend-services namespace (services, Secrets and the PostgreSQL
# and Kafka volume claims, whose volumes Minikube's provisioner then deletes), the Dapr control
# plane and the Dapr scheduler's volume claims (its reminders name actors of the deleted apps).
# Secrets and volumes go together: a PostgreSQL volume that outlived its password Secret could
# not be opened with a new one.
set -euo pipefail
PROFILE="${LEARNFLOW_MINIKUBE_PROFILE:-learnflow}"
NAMESPACE=phase-3-backend-services
# The chart's scheduler StatefulSet runs 3 members, each with claim dapr-scheduler-data-dir.
SCHEDULER_CLAIMS=(dapr-scheduler-data-dir-dapr-scheduler-server-{0,1,2})

for tool in minikube kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "[minikube-down] $tool is not on PATH" >&2; exit 1; }
done

case "${1:-}" in
  "")
    minikube delete --profile "$PROFILE"
    ;;
  --keep-cluster)
    # Deleting the namespace deletes its Secrets and its PersistentVolumeClaims with it;
    # --wait returns once all of them are gone.
    kubectl --context "$PROFILE" delete namespace "$NAMESPACE" --ignore-not-found --wait
    helm uninstall dapr --kube-context "$PROFILE" --namespace dapr-system --ignore-not-found --wait
    kubectl --context "$PROFILE" --namespace dapr-system delete pvc "${SCHEDULER_CLAIMS[@]}" \
      --ignore-not-found --wait
    ;;
  *)
    echo "usage: $0 [--keep-cluster]" >&2
    exit 2
    ;;
esac
echo "[minikube-down] done (profile $PROFILE)"
