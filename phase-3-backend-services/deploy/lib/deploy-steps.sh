# shellcheck shell=bash
# Deploy steps shared by every target of the LearnFlow phase 3 deploy: Minikube
# (../minikube-up.sh) and the sandbox Kubernetes built on this machine (../cluster/). Sourced,
# never executed. A pass on one target means the other runs the same manifests, in the same
# order, with the same checks; only what is listed under "The caller defines" differs.
#
# The caller defines, before calling any step:
#   KUBECTL=(...)          full kubectl command prefix, context/kubeconfig included; the
#                          library adds --namespace itself where it needs one (see kc)
#   HELM=(...)             full helm command prefix, kube-context/kubeconfig included
#   DAPR_CHART=(...)       chart reference for `helm upgrade --install dapr`, e.g.
#                          (dapr/dapr --version "$DAPR_VERSION") or a local chart directory
#   OVERLAY=DIR            the kustomize overlay to deploy (both targets: overlays/minikube)
#   IMAGE_OVERRIDES=(...)  "name=newName:newTag" strings, applied at render time (kustomize
#                          `images:` in a generated kustomization whose resource is OVERLAY);
#                          every override must change an image the overlay names
#   DAPR_HELM_EXTRA=(...)  extra helm arguments of the target, after the library's own --set
#                          (so they win on a conflict); may be empty
#   load_images            a function putting the images IMAGE_OVERRIDES names where the
#                          cluster's container runtime finds them without pulling
# Optional: DEPLOY_WORK=DIR before sourcing (kept; else a temp dir that deploy_steps_cleanup
#   removes), DEPLOY_TITLE (summary heading), COURSE_AGENT_LLM_API_KEY (stored in a Secret),
#   PLACEMENT_TABLE_WAIT_SECONDS (60: how long check_placement waits for placement's table).
#
# The library provides:
#   step NAME FUNC [ARGS...]  runs FUNC in a subshell (errexit, pipefail, inherit_errexit),
#                             records PASS/FAIL; on the first failure prints the summary and
#                             exits 1
#   print_summary             the PASS/FAIL lines so far (once; later calls print nothing)
#   run_deploy_steps          every step below in the order both targets use
#   render_overlay install_dapr load_images(caller's) deploy_infrastructure deploy_services
#   check_sidecars check_placement smoke_test       the steps themselves
#   kc ARGS...                "${KUBECTL[@]}" --namespace "$NAMESPACE" ARGS...
#   service_pod APP           name of the newest Running pod of a service
#   deploy_steps_cleanup      removes the temp DEPLOY_WORK (call it from the EXIT trap)
#   NAMESPACE, DEPLOY_DIR, RENDERED (the rendered manifests, $DEPLOY_WORK/learnflow.yaml)
# Logging goes through deploy_log ("[deploy] ..." on stderr); nothing here redefines the
# caller's log/die. Decisions taken for the sandbox: the library sources versions.env itself
# (DAPR_VERSION, used for the Dapr image tag; it also sets UV_VERSION, KUBERNETES_VERSION and
# the other pins, so callers keep settings of their own under other names), the rendered
# overlay is a file the caller may read after render_overlay, and run_deploy_steps renders
# first (no cluster needed), so a broken overlay fails before any image is built.

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../../versions.env
source "$DEPLOY_DIR/../versions.env" # DAPR_VERSION, UV_VERSION
NAMESPACE=phase-3-backend-services
# The database the postgres StatefulSet creates (POSTGRES_DB) and the role its init script
# creates for the apps (LEARNFLOW_APP_USER); the superuser (postgres) is not the apps'.
PG_DATABASE=learnflow
PG_USER=learnflow
APP_SELECTOR=app.kubernetes.io/component=app
PLACEMENT_STATE_PATH=/api/v1/namespaces/dapr-system/pods/dapr-placement-server-0:8080/proxy/placement/state
# Dapr scheduler volumes: the chart runs 3 members (fixed in 1.18); each keeps its reminders
# on a claim of this size.
DAPR_SCHEDULER_STORAGE=1Gi

if [[ -z "${DEPLOY_WORK:-}" ]]; then
  DEPLOY_WORK="$(mktemp -d "${TMPDIR:-/tmp}/learnflow-deploy.XXXXXX")"
  _DEPLOY_WORK_OWNED=1
else
  mkdir -p "$DEPLOY_WORK"
  _DEPLOY_WORK_OWNED=0
fi
RENDERED="$DEPLOY_WORK/learnflow.yaml"
SUMMARY=()
_SUMMARY_PRINTED=0

deploy_log() { printf '[deploy] %s\n' "$*" >&2; }

deploy_steps_cleanup() {
  if ((_DEPLOY_WORK_OWNED)); then rm -rf "$DEPLOY_WORK"; fi
}

print_summary() {
  local line
  ((_SUMMARY_PRINTED)) && return 0
  _SUMMARY_PRINTED=1
  printf '\n==== %s ====\n' "${DEPLOY_TITLE:-LearnFlow deploy}"
  for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
}

# step NAME FUNC [ARGS...]: runs one step, records PASS/FAIL and stops at the first failure.
# The step runs in a subshell with errexit on: inside `if` or `||` bash would ignore -e for
# the whole function, and a failing command in the middle of a step would go unnoticed.
# A step therefore cannot set variables for later steps: it leaves files in DEPLOY_WORK.
# pipefail and inherit_errexit too, so a failure inside a pipeline or $(...) fails the step.
step() {
  local name="$1" status
  shift
  deploy_log "$name ..."
  set +e
  (set -eo pipefail; shopt -s inherit_errexit; "$@")
  status=$?
  set -e
  if ((status == 0)); then
    SUMMARY+=("PASS  $name")
  else
    SUMMARY+=("FAIL  $name (exit $status)")
    print_summary
    exit 1
  fi
}

kc() { "${KUBECTL[@]}" --namespace "$NAMESPACE" "$@"; }

# --- render -------------------------------------------------------------------------------

# "../" once per component of the physical path of $1, then $2 without its leading slash: a
# relative path from $1 to $2 (kustomize refuses absolute resource paths), without GNU-only
# `realpath --relative-to`.
_relative_path() {
  local from to up="" rest
  from="$(cd "$1" && pwd -P)"
  to="$(cd "$2" && pwd -P)"
  rest="${from#/}"
  while [[ -n "$rest" ]]; do
    up+="../"
    [[ "$rest" == */* ]] && rest="${rest#*/}" || rest=""
  done
  echo "${up}${to#/}"
}

# The overlay with IMAGE_OVERRIDES applied, into $RENDERED. Every override must change an
# image the overlay names (a typo would otherwise deploy the unreplaced image).
render_overlay() {
  local dir="$DEPLOY_WORK/render" override name target new_name new_tag overlay_path
  rm -rf "$dir"
  mkdir -p "$dir"
  overlay_path="$(_relative_path "$dir" "$OVERLAY")"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - $overlay_path"
    if ((${#IMAGE_OVERRIDES[@]})); then echo "images:"; fi
    for override in "${IMAGE_OVERRIDES[@]}"; do
      name="${override%%=*}"
      target="${override#*=}"
      new_name="${target%:*}"
      new_tag="${target##*:}"
      if [[ "$override" != *=* || -z "$name" || "$target" != *:* || -z "$new_name" || -z "$new_tag" \
        || "$new_tag" == */* ]]; then
        deploy_log "IMAGE_OVERRIDES entry '$override' is not name=newName:newTag"
        return 1
      fi
      printf '  - name: %s\n    newName: %s\n    newTag: "%s"\n' "$name" "$new_name" "$new_tag"
    done
  } >"$dir/kustomization.yaml"
  "${KUBECTL[@]}" kustomize "$dir" >"$RENDERED"
  rendered_images >"$DEPLOY_WORK/images.txt"
  for override in "${IMAGE_OVERRIDES[@]}"; do
    if ! grep -Fxq "${override#*=}" "$DEPLOY_WORK/images.txt"; then
      deploy_log "image override $override matched no image of $OVERLAY"
      return 1
    fi
  done
  deploy_log "rendered $(grep -c '^kind:' "$RENDERED") objects with images:"
  sed 's/^/  /' "$DEPLOY_WORK/images.txt" >&2
}

# Every image the rendered manifests name, once each.
rendered_images() {
  awk '$1 == "image:" {print $2} $1 == "-" && $2 == "image:" {print $3}' "$RENDERED" \
    | tr -d "\"'" | sort -u
}

# --- Dapr control plane -------------------------------------------------------------------

# Dapr from its Helm chart, pinned: images ghcr.io/dapr/*:$DAPR_VERSION (the chart's own
# default tag is "edge"). The scheduler keeps reminders on persistent volumes (in-memory
# storage loses every reminder when a member restarts; User Progress relies on them); the
# chart runs 3 members, so 3 small claims. sidecarDropALLCapabilities lets sidecars meet the
# namespace's restricted Pod Security Standard; metadataEnabled serves placement's table.
install_dapr() {
  local claims
  # A scheduler installed with in-memory storage (earlier versions of this script) has no
  # volume claims, and a StatefulSet's claims cannot be added by an upgrade: replace it
  # (its in-memory data is lost at any restart anyway).
  if "${KUBECTL[@]}" --namespace dapr-system get statefulset dapr-scheduler-server >/dev/null 2>&1; then
    claims="$("${KUBECTL[@]}" --namespace dapr-system get statefulset dapr-scheduler-server \
      --output jsonpath='{.spec.volumeClaimTemplates[*].metadata.name}')"
    if [[ -z "$claims" ]]; then
      deploy_log "replacing the in-memory Dapr scheduler with one on persistent volumes"
      "${KUBECTL[@]}" --namespace dapr-system delete statefulset dapr-scheduler-server --wait
    fi
  fi
  "${HELM[@]}" upgrade --install dapr "${DAPR_CHART[@]}" \
    --namespace dapr-system --create-namespace \
    --set global.registry=ghcr.io/dapr \
    --set "global.tag=$DAPR_VERSION" \
    --set global.ha.enabled=false \
    --set dapr_scheduler.cluster.inMemoryStorage=false \
    --set "dapr_scheduler.cluster.storageSize=$DAPR_SCHEDULER_STORAGE" \
    --set dapr_sidecar_injector.sidecarDropALLCapabilities=true \
    --set dapr_placement.metadataEnabled=true \
    "${DAPR_HELM_EXTRA[@]}" \
    --wait --timeout 10m
}

# --- secrets and infrastructure -----------------------------------------------------------

random_password() {
  head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-32
}

# Secrets never live in the manifests: generated here once and kept across reruns, because
# PostgreSQL keeps the passwords its data directory was initialised with. postgres-credentials:
# the superuser's password (POSTGRES_PASSWORD) and the app role's (LEARNFLOW_APP_PASSWORD, read
# by the init script that creates the role); learnflow-secrets: the state store's connection
# string, as the app role. Values reach kubectl through pipes (<(...)), never a file or an
# argument.
create_secrets() {
  local superuser_password app_password keys
  if kc get secret postgres-credentials >/dev/null 2>&1; then
    keys="$(kc get secret postgres-credentials --output jsonpath='{.data}')"
    if [[ "$keys" != *'"LEARNFLOW_APP_PASSWORD"'* ]]; then
      deploy_log "postgres-credentials is from an earlier layout (the apps used the superuser);"
      deploy_log "its database cannot be migrated in place: run minikube-down.sh --keep-cluster"
      deploy_log "(deletes the namespace with its data) and deploy again"
      return 1
    fi
  else
    if kc get secret learnflow-secrets >/dev/null 2>&1 || kc get pvc data-postgres-0 >/dev/null 2>&1; then
      deploy_log "learnflow-secrets or the PostgreSQL volume (pvc/data-postgres-0) exists without"
      deploy_log "postgres-credentials: the database keeps passwords that are gone. Run"
      deploy_log "minikube-down.sh --keep-cluster (deletes secrets and volumes) and deploy again"
      return 1
    fi
    superuser_password="$(random_password)"
    app_password="$(random_password)"
    kc create secret generic postgres-credentials \
      --from-file=POSTGRES_PASSWORD=<(printf '%s' "$superuser_password") \
      --from-file=LEARNFLOW_APP_PASSWORD=<(printf '%s' "$app_password")
    kc create secret generic learnflow-secrets \
      --from-file=LEARNFLOW_PG_CONNECTION=<(printf 'host=postgres.%s.svc.cluster.local port=5432 user=%s password=%s dbname=%s sslmode=disable' \
        "$NAMESPACE" "$PG_USER" "$app_password" "$PG_DATABASE")
  fi
  # The token each sidecar sends its app (dapr.io/app-token-secret; the apps refuse Dapr-route
  # calls without it), and the one each app sends its sidecar (dapr.io/api-token-secret; daprd
  # refuses API calls without it). Made once, kept across runs.
  # No trailing newline: each value travels as an HTTP header as it is.
  if ! kc get secret dapr-app-token >/dev/null 2>&1; then
    kc create secret generic dapr-app-token --from-file=token=<(printf '%s' "$(random_password)")
  fi
  if ! kc get secret dapr-api-token >/dev/null 2>&1; then
    kc create secret generic dapr-api-token --from-file=token=<(printf '%s' "$(random_password)")
  fi
  # End-user tokens: the apps verify them with AUTH_PUBLIC_KEY. This deploy makes a development
  # signing key pair (the private half stays in its own Secret, for minting test and demo
  # tokens); a production overlay sets AUTH_JWKS_URL to its identity provider instead.
  if ! kc get secret learnflow-dev-signing-key >/dev/null 2>&1; then
    local signing_key public_key
    signing_key="$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null)"
    public_key="$(printf '%s\n' "$signing_key" | openssl pkey -pubout)"
    kc create secret generic learnflow-dev-signing-key \
      --from-file=SIGNING_KEY_PEM=<(printf '%s' "$signing_key")
    kc create secret generic learnflow-auth-public \
      --from-file=AUTH_PUBLIC_KEY=<(printf '%s' "$public_key")
  fi
  # A service with an LLM (course-agent, and any the fastapi-dapr-agent skill generates with
  # --llm) reads its key from the optional Secret <app>-llm, key <APP>_LLM_API_KEY: set from
  # that variable when it is set here, else created empty (replay mode needs no key).
  local app variable
  for app in $(sed -n 's/^ *name: \([a-z0-9-]*\)-llm$/\1/p' "$DEPLOY_DIR"/base/apps/*.yaml | sort -u); do
    variable="$(tr 'a-z-' 'A-Z_' <<<"$app")_LLM_API_KEY"
    if [[ -n "${!variable:-}" ]]; then
      kc create secret generic "$app-llm" \
        --from-file="$variable"=<(printf '%s' "${!variable}") \
        --dry-run=client --output yaml | kc apply --filename -
    elif ! kc get secret "$app-llm" >/dev/null 2>&1; then
      kc create secret generic "$app-llm"
    fi
  done
}

# Waits until Job $1 completes; stops early, with its pods' logs, when it fails.
wait_for_job() {
  local job="$1" timeout="$2" deadline conditions
  deadline=$((SECONDS + timeout))
  while true; do
    conditions="$(kc get job "$job" \
      --output jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
    case " $conditions " in
      *" Complete "*) deploy_log "job $job complete"; return 0 ;;
      *" Failed "*) deploy_log "job $job failed" ;;
      *)
        if ((SECONDS < deadline)); then sleep 2; continue; fi
        deploy_log "job $job not complete after ${timeout}s"
        ;;
    esac
    kc get pods --selector "job-name=$job" >&2 || true
    kc logs --selector "job-name=$job" --all-containers --prefix --tail 40 >&2 || true
    return 1
  done
}

# Namespace and Secrets first (the workloads mount the Secrets, sidecars resolve the state
# store's secretKeyRef when they start), then everything but the services: network policies,
# PostgreSQL, Kafka, the topics Job and the Dapr resources, so sidecars find their components
# and Kafka when they start. The topics Job is recreated each run (its pod template is
# immutable). kubectl's report is kept: deploy_services restarts unchanged services when a
# Dapr resource or a Secret changed.
deploy_infrastructure() {
  local report="$DEPLOY_WORK/infrastructure-applied.txt"
  "${KUBECTL[@]}" apply --filename "$RENDERED" --selector app.kubernetes.io/component=namespace
  create_secrets | tee "$report" >&2
  kc delete job kafka-topics --ignore-not-found
  "${KUBECTL[@]}" apply --filename "$RENDERED" \
    --selector "app.kubernetes.io/component notin (app,namespace)" | tee -a "$report" >&2
  wait_for_rollout statefulset/postgres
  wait_for_rollout statefulset/kafka
  wait_for_job kafka-topics 300
}

# kubectl rollout status, and on failure what the pods and the namespace's events say.
wait_for_rollout() {
  kc rollout status "$1" --timeout "${2:-5m}" && return 0
  deploy_log "$1 did not roll out; pods and recent events:"
  kc get pods --output wide >&2 || true
  kc get events --sort-by .lastTimestamp 2>/dev/null | tail -n 25 >&2 || true
  return 1
}

# --- services -----------------------------------------------------------------------------

# The service Deployments, by name (errexit does not see a failure inside `for x in $(...)`).
service_deployments() {
  local names
  names="$(kc get deployment --selector "$APP_SELECTOR" --output jsonpath='{.items[*].metadata.name}')"
  [[ -n "$names" ]] || { deploy_log "no Deployment labelled $APP_SELECTOR in $NAMESPACE"; return 1; }
  echo "$names"
}

# The running pod of a service (the newest: pods of the previous rollout may still be stopping).
service_pod() {
  local pod
  pod="$(kc get pod --selector "app.kubernetes.io/name=$1" --field-selector status.phase=Running \
    --sort-by .metadata.creationTimestamp --output jsonpath='{.items[-1:].metadata.name}')"
  [[ -n "$pod" ]] || { deploy_log "no running pod of $1"; return 1; }
  echo "$pod"
}

# Images are tagged by content, so a new build rolls the pods out by itself. Sidecars read
# their Dapr resources and secrets only at start (hot reload is off): when one of those
# changed and a service's Deployment did not, that service is restarted.
deploy_services() {
  local apps app report="$DEPLOY_WORK/services-applied.txt" resources_changed=0
  "${KUBECTL[@]}" apply --filename "$RENDERED" --selector "$APP_SELECTOR" | tee "$report" >&2
  if grep -Eq '^(secret/|[a-z]+\.dapr\.io/)\S+ (created|configured)$' \
    "$DEPLOY_WORK/infrastructure-applied.txt" 2>/dev/null; then
    resources_changed=1
  fi
  apps="$(service_deployments)"
  for app in $apps; do
    if ((resources_changed)) && grep -qx "deployment.apps/$app unchanged" "$report"; then
      deploy_log "restarting $app: its Dapr resources or secrets changed"
      kc rollout restart "deployment/$app"
    fi
  done
  for app in $apps; do
    wait_for_rollout "deployment/$app"
  done
}

check_sidecars() {
  local apps app pod containers
  apps="$(service_deployments)"
  for app in $apps; do
    pod="$(service_pod "$app")"
    containers="$(kc get pod "$pod" --output jsonpath='{.spec.containers[*].name}')"
    if [[ " $containers " != *" daprd "* ]]; then
      deploy_log "pod $pod of $app has no daprd container (has: $containers)"
      return 1
    fi
    deploy_log "pod $pod of $app runs: $containers"
  done
}

# Registration, from both sides. Each sidecar's /v1.0/metadata must show placement: connected
# and the actor types its Deployment declares (annotation learnflow.dev/actor-types); then
# placement's own table, read through the API server's pod proxy, must list every app id with
# those actor types. The table check runs in a service container (its Python), so the
# machine running this needs no Python.
check_placement() {
  local apps app pod actor_types expected=() table deadline problems table_check
  table_check="$(cat "$DEPLOY_DIR/scripts/placement_table_check.py")"
  apps="$(service_deployments)"
  for app in $apps; do
    actor_types="$(kc get deployment "$app" \
      --output jsonpath='{.metadata.annotations.learnflow\.dev/actor-types}')"
    [[ -n "$actor_types" ]] || { deploy_log "deployment $app declares no actor types"; return 1; }
    expected+=("$app=$actor_types")
    pod="$(service_pod "$app")"
    kc exec -i "$pod" --container "$app" -- python - "$actor_types" \
      <"$DEPLOY_DIR/scripts/placement_check.py"
  done
  pod="$(service_pod course-agent)"
  deadline=$((SECONDS + ${PLACEMENT_TABLE_WAIT_SECONDS:-60}))
  while true; do
    if table="$("${KUBECTL[@]}" get --raw "$PLACEMENT_STATE_PATH" 2>&1)" \
      && problems="$(kc exec -i "$pod" --container course-agent -- python -c "$table_check" \
        "$NAMESPACE" "${expected[@]}" <<<"$table" 2>&1)"; then
      printf '%s\n' "$problems" >&2
      return 0
    fi
    if ((SECONDS >= deadline)); then
      deploy_log "placement's table does not list every app with its actor types:"
      printf '%s\n%s\n' "${problems:-}" "$table" >&2
      return 1
    fi
    sleep 3
  done
}

smoke_test() {
  local pod
  pod="$(service_pod course-agent)"
  kc exec -i "$pod" --container course-agent -- python - <"$DEPLOY_DIR/scripts/smoke_test.py"
}

# --- the whole path -----------------------------------------------------------------------

run_deploy_steps() {
  step "overlay $(basename "$OVERLAY") rendered with ${#IMAGE_OVERRIDES[@]} image overrides" render_overlay
  step "Dapr $DAPR_VERSION control plane installed (Helm, dapr-system)" install_dapr
  step "images loaded into the cluster's container runtime" load_images
  step "namespace, secrets, PostgreSQL, Kafka, topics and Dapr resources deployed" deploy_infrastructure
  step "course-agent and user-progress rolled out" deploy_services
  step "every service pod runs a daprd sidecar" check_sidecars
  step "both sidecars connected to placement; placement's table lists both apps and actor types" check_placement
  step "smoke test: lesson generated (replay) and counted in the learner's status" smoke_test
}
