#!/usr/bin/env bash
# Tears down what minikube-up.sh made. Default: deletes the whole Minikube profile.
# --keep-cluster: keeps Minikube, removes the phase-3-backend-services namespace (services,
# PostgreSQL and Kafka data, secrets) and the Dapr control plane.
set -euo pipefail
PROFILE="${LEARNFLOW_MINIKUBE_PROFILE:-learnflow}"
NAMESPACE=phase-3-backend-services

for tool in minikube kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "[minikube-down] $tool is not on PATH" >&2; exit 1; }
done

case "${1:-}" in
  "")
    minikube delete --profile "$PROFILE"
    ;;
  --keep-cluster)
    kubectl --context "$PROFILE" delete namespace "$NAMESPACE" --ignore-not-found --wait
    helm uninstall dapr --kube-context "$PROFILE" --namespace dapr-system --ignore-not-found
    ;;
  *)
    echo "usage: $0 [--keep-cluster]" >&2
    exit 2
    ;;
esac
echo "[minikube-down] done (profile $PROFILE)"
