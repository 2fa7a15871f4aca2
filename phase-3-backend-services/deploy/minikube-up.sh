#!/usr/bin/env bash
# One command from nothing to a verified LearnFlow phase 3 on Minikube: starts a Minikube
# profile, installs the Dapr control plane (pinned, Helm), builds both service images inside
# Minikube, deploys the minikube overlay (PostgreSQL, Kafka, Dapr resources, both services),
# then proves each sidecar is registered with Dapr placement and runs an end-to-end smoke test.
# Prints a pass/fail summary; exits non-zero on the first failure. Safe to run again.
#
# Settings (environment): LEARNFLOW_MINIKUBE_PROFILE (learnflow), LEARNFLOW_MINIKUBE_MEMORY
# (6g), LEARNFLOW_MINIKUBE_CPUS (2), LEARNFLOW_KUBERNETES_VERSION (v1.34.0),
# COURSE_AGENT_LLM_API_KEY (optional; only the openai provider uses it).
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PHASE_DIR="$(dirname "$DEPLOY_DIR")"
REPO_ROOT="$(dirname "$PHASE_DIR")"
# shellcheck source=../versions.env
source "$PHASE_DIR/versions.env"  # DAPR_VERSION, UV_VERSION

PROFILE="${LEARNFLOW_MINIKUBE_PROFILE:-learnflow}"
MEMORY="${LEARNFLOW_MINIKUBE_MEMORY:-6g}"
CPUS="${LEARNFLOW_MINIKUBE_CPUS:-2}"
KUBERNETES_VERSION="${LEARNFLOW_KUBERNETES_VERSION:-v1.34.0}"
NAMESPACE=phase-3-backend-services
OVERLAY="$DEPLOY_DIR/overlays/minikube"
# The database the postgres StatefulSet creates (POSTGRES_DB) and the user the script creates.
PG_DATABASE=learnflow
PG_USER=learnflow
APP_SELECTOR=app.kubernetes.io/component=app

SUMMARY=()
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"; print_summary' EXIT

print_summary() {
  local line
  printf '\n==== LearnFlow on Minikube (profile %s) ====\n' "$PROFILE"
  for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
}
log() { printf '[minikube-up] %s\n' "$*" >&2; }
# step NAME COMMAND...: runs one step, records PASS/FAIL and stops at the first failure.
# The step runs in a subshell with errexit on: inside `if` or `||` bash would ignore -e for
# the whole function, and a failing command in the middle of a step would go unnoticed.
step() {
  local name="$1" status
  shift
  log "$name ..."
  set +e
  (set -e; "$@")
  status=$?
  set -e
  if ((status == 0)); then
    SUMMARY+=("PASS  $name")
  else
    SUMMARY+=("FAIL  $name (exit $status)")
    exit 1
  fi
}
kc() { kubectl --context "$PROFILE" --namespace "$NAMESPACE" "$@"; }

preflight() {
  local tool missing=()
  for tool in minikube kubectl helm; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    log "missing on PATH: ${missing[*]}. Install them first:"
    log "  minikube https://minikube.sigs.k8s.io/docs/start/ , kubectl https://kubernetes.io/docs/tasks/tools/ , helm https://helm.sh/docs/intro/install/"
    return 1
  fi
}

start_minikube() {
  if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
    log "profile $PROFILE is already running"
  else
    minikube start --profile "$PROFILE" --memory "$MEMORY" --cpus "$CPUS" \
      --kubernetes-version "$KUBERNETES_VERSION"
  fi
  kubectl --context "$PROFILE" get nodes >/dev/null
}

install_dapr() {
  helm repo add dapr https://dapr.github.io/helm-charts/ --force-update >/dev/null
  helm repo update dapr >/dev/null
  # inMemoryStorage: one node, no durable scheduler volumes needed. sidecarDropALLCapabilities
  # lets sidecars meet the namespace's restricted Pod Security Standard. metadataEnabled
  # exposes the placement table (see README: "See placement registration yourself").
  helm upgrade --install dapr dapr/dapr --version "$DAPR_VERSION" \
    --kube-context "$PROFILE" --namespace dapr-system --create-namespace \
    --set dapr_scheduler.cluster.inMemoryStorage=true \
    --set dapr_sidecar_injector.sidecarDropALLCapabilities=true \
    --set dapr_placement.metadataEnabled=true \
    --wait --timeout 10m
}

render_overlay() {
  kubectl kustomize "$OVERLAY" >"$WORK/learnflow.yaml"
}

# Each service image the overlay names (learnflow/<service>:<tag>) is built from
# phase-3-backend-services/<service>/Dockerfile with the repository root as context.
build_images() {
  local images image service
  images="$(awk '$1 == "image:" && $2 ~ /^learnflow\// {print $2}' "$WORK/learnflow.yaml" | sort -u)"
  [[ -n "$images" ]] || { log "the overlay names no learnflow/ image"; return 1; }
  for image in $images; do
    service="${image#learnflow/}"
    service="${service%%:*}"
    log "building $image inside Minikube"
    (cd "$REPO_ROOT" && minikube --profile "$PROFILE" image build --tag "$image" \
      --file "phase-3-backend-services/$service/Dockerfile" \
      --build-opt "build-arg=UV_VERSION=$UV_VERSION" .)
  done
}

random_password() {
  head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-32
}

# Secrets never live in the manifests: generated here once, kept across reruns (PostgreSQL
# keeps the password it was initialised with).
create_secrets() {
  local dir="$WORK/secrets" password
  mkdir -m 700 "$dir"
  if ! kc get secret postgres-credentials >/dev/null 2>&1; then
    if kc get secret learnflow-secrets >/dev/null 2>&1; then
      log "learnflow-secrets exists without postgres-credentials; run minikube-down.sh first"
      return 1
    fi
    password="$(random_password)"
    printf '%s' "$PG_USER" >"$dir/POSTGRES_USER"
    printf '%s' "$password" >"$dir/POSTGRES_PASSWORD"
    printf 'host=postgres.%s.svc.cluster.local port=5432 user=%s password=%s dbname=%s sslmode=disable' \
      "$NAMESPACE" "$PG_USER" "$password" "$PG_DATABASE" >"$dir/LEARNFLOW_PG_CONNECTION"
    kc create secret generic postgres-credentials \
      --from-file=POSTGRES_USER="$dir/POSTGRES_USER" \
      --from-file=POSTGRES_PASSWORD="$dir/POSTGRES_PASSWORD" >/dev/null
    kc create secret generic learnflow-secrets \
      --from-file=LEARNFLOW_PG_CONNECTION="$dir/LEARNFLOW_PG_CONNECTION" >/dev/null
  fi
  if [[ -n "${COURSE_AGENT_LLM_API_KEY:-}" ]]; then
    printf '%s' "$COURSE_AGENT_LLM_API_KEY" >"$dir/COURSE_AGENT_LLM_API_KEY"
    kc create secret generic course-agent-llm \
      --from-file=COURSE_AGENT_LLM_API_KEY="$dir/COURSE_AGENT_LLM_API_KEY" \
      --dry-run=client --output yaml | kc apply --filename - >/dev/null
  elif ! kc get secret course-agent-llm >/dev/null 2>&1; then
    kc create secret generic course-agent-llm >/dev/null
  fi
  rm -rf "$dir"
}

# Infrastructure and Dapr resources first, so sidecars find their components and Kafka when
# they start. The topics Job is recreated each run: a Job's pod template is immutable.
deploy_infrastructure() {
  kc delete job kafka-topics --ignore-not-found >/dev/null
  kubectl --context "$PROFILE" apply --filename "$WORK/learnflow.yaml" \
    --selector "app.kubernetes.io/component notin (app)" >/dev/null
  create_secrets
  kc rollout status statefulset/postgres --timeout 5m
  kc rollout status statefulset/kafka --timeout 5m
  kc wait --for condition=complete job/kafka-topics --timeout 5m
}

# The service Deployments, by name (errexit does not see a failure inside `for x in $(...)`).
service_deployments() {
  local names
  names="$(kc get deployment --selector "$APP_SELECTOR" --output jsonpath='{.items[*].metadata.name}')"
  [[ -n "$names" ]] || { log "no Deployment labelled $APP_SELECTOR in $NAMESPACE"; return 1; }
  echo "$names"
}

# The running pod of a service (the newest: pods of the previous rollout may still be stopping).
service_pod() {
  local pod
  pod="$(kc get pod --selector "app.kubernetes.io/name=$1" --field-selector status.phase=Running \
    --sort-by .metadata.creationTimestamp --output jsonpath='{.items[-1:].metadata.name}')"
  [[ -n "$pod" ]] || { log "no running pod of $1"; return 1; }
  echo "$pod"
}

deploy_services() {
  local apps app
  kubectl --context "$PROFILE" apply --filename "$WORK/learnflow.yaml" >/dev/null
  apps="$(service_deployments)"
  # Same tag, fresh build: restart so the pods run the images just built.
  for app in $apps; do
    kc rollout restart "deployment/$app" >/dev/null
  done
  for app in $apps; do
    kc rollout status "deployment/$app" --timeout 5m
  done
}

check_sidecars() {
  local apps app pod containers
  apps="$(service_deployments)"
  for app in $apps; do
    pod="$(service_pod "$app")"
    containers="$(kc get pod "$pod" --output jsonpath='{.spec.containers[*].name}')"
    if [[ " $containers " != *" daprd "* ]]; then
      log "pod $pod of $app has no daprd container (has: $containers)"
      return 1
    fi
    log "pod $pod of $app runs: $containers"
  done
}

# Each sidecar's /v1.0/metadata must show placement: connected and the actor types the
# Deployment declares (annotation learnflow.dev/actor-types).
check_placement() {
  local apps app pod actor_types
  apps="$(service_deployments)"
  for app in $apps; do
    actor_types="$(kc get deployment "$app" --output jsonpath='{.metadata.annotations.learnflow\.dev/actor-types}')"
    pod="$(service_pod "$app")"
    kc exec -i "$pod" --container "$app" -- python - "$actor_types" \
      <"$DEPLOY_DIR/scripts/placement_check.py"
  done
}

smoke_test() {
  local pod
  pod="$(service_pod course-agent)"
  kc exec -i "$pod" --container course-agent -- python - <"$DEPLOY_DIR/scripts/smoke_test.py"
}

step "preflight: minikube, kubectl and helm on PATH" preflight
step "minikube profile $PROFILE running (memory $MEMORY, cpus $CPUS)" start_minikube
step "Dapr $DAPR_VERSION control plane installed (Helm, dapr-system)" install_dapr
step "minikube overlay rendered" render_overlay
step "service images built inside Minikube" build_images
step "PostgreSQL, Kafka, topics and Dapr resources deployed" deploy_infrastructure
step "course-agent and user-progress rolled out" deploy_services
step "every service pod runs a daprd sidecar" check_sidecars
step "every sidecar registered its actor types with placement" check_placement
step "smoke test: lesson generated (replay) and counted in the learner's status" smoke_test
