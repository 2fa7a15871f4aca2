#!/usr/bin/env bash
# One command from nothing to a verified LearnFlow phase 3 on Minikube: checks minikube,
# kubectl and helm, starts a Minikube profile, then runs the deploy steps shared with the
# sandbox cluster (lib/deploy-steps.sh): Dapr control plane (pinned, Helm), both service images
# built inside Minikube and tagged by content, the minikube overlay (PostgreSQL, Kafka, Dapr
# resources, both services), placement registration checked from both sides and an end-to-end
# smoke test. Prints a pass/fail summary; exits non-zero on the first failure. Safe to run again.
#
# Settings (environment): LEARNFLOW_MINIKUBE_PROFILE (learnflow), LEARNFLOW_MINIKUBE_MEMORY
# (6g), LEARNFLOW_MINIKUBE_CPUS (2), LEARNFLOW_KUBERNETES_VERSION (v1.34.0),
# COURSE_AGENT_LLM_API_KEY (optional; only the openai provider uses it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

PROFILE="${LEARNFLOW_MINIKUBE_PROFILE:-learnflow}"
MEMORY="${LEARNFLOW_MINIKUBE_MEMORY:-6g}"
CPUS="${LEARNFLOW_MINIKUBE_CPUS:-2}"
# Not KUBERNETES_VERSION: versions.env (sourced by the library) pins the sandbox's under it.
MINIKUBE_KUBERNETES_VERSION="${LEARNFLOW_KUBERNETES_VERSION:-v1.34.0}"
# Oldest tools this script is known to need: minikube 1.37 is the first to support
# Kubernetes 1.34; kubectl within one minor version of the cluster (Kubernetes' skew policy);
# Helm 3 (>= 3.13 for `helm uninstall --ignore-not-found` in minikube-down.sh).
MINIKUBE_MIN=1.37.0
HELM_MIN=3.13.0
# shellcheck source=SCRIPTDIR/lib/deploy-steps.sh
source "$HERE/lib/deploy-steps.sh"
# shellcheck source=SCRIPTDIR/lib/services.sh
source "$HERE/lib/services.sh"
mapfile -t SERVICES < <(learnflow_services "$HERE/..")
DEPLOY_TITLE="LearnFlow on Minikube (profile $PROFILE)"
trap 'deploy_steps_cleanup; print_summary' EXIT

KUBECTL=(kubectl --context "$PROFILE")
HELM=(helm --kube-context "$PROFILE")
DAPR_CHART=(dapr/dapr --version "$DAPR_VERSION")
OVERLAY="$DEPLOY_DIR/overlays/minikube"
DAPR_HELM_EXTRA=()
IMAGE_OVERRIDES=()

log() { printf '[minikube-up] %s\n' "$*" >&2; }

# version_at_least HAVE MIN: true when dotted version HAVE >= MIN.
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" == "$2" ]]
}
# The x.y.z in a version string such as "v1.34.1" or "minikube version: v1.37.0".
semver() { grep -Eo '[0-9]+\.[0-9]+(\.[0-9]+)?' <<<"$1" | head -n 1; }

preflight() {
  local tool missing=() problems=() minikube_version kubectl_version helm_version kube_minor kubectl_minor
  if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    problems+=("bash $BASH_VERSION is older than 4.4 (macOS ships 3.2: install a newer one, e.g. brew install bash)")
  fi
  for tool in minikube kubectl helm docker git; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    log "missing on PATH: ${missing[*]}. Install them first:"
    log "  minikube https://minikube.sigs.k8s.io/docs/start/ , kubectl https://kubernetes.io/docs/tasks/tools/ ,"
    log "  helm https://helm.sh/docs/intro/install/ , docker (the CLI only: images are built by Minikube's"
    log "  Docker daemon) https://docs.docker.com/engine/install/binaries/ , git"
    return 1
  fi
  minikube_version="$(semver "$(minikube version --short 2>/dev/null || true)")"
  kubectl_version="$(semver "$(kubectl version --client 2>/dev/null | head -n 1 || true)")"
  helm_version="$(semver "$(helm version --template '{{.Version}}' 2>/dev/null || true)")"
  if [[ -z "$minikube_version" ]] || ! version_at_least "$minikube_version" "$MINIKUBE_MIN"; then
    problems+=("minikube ${minikube_version:-of unknown version} is older than $MINIKUBE_MIN (the first with Kubernetes 1.34)")
  fi
  kube_minor="$(semver "$MINIKUBE_KUBERNETES_VERSION" | cut -d. -f2)"
  kubectl_minor="$(cut -d. -f2 <<<"${kubectl_version:-0.0}")"
  if [[ -z "$kubectl_version" ]] || ((kubectl_minor < kube_minor - 1 || kubectl_minor > kube_minor + 1)); then
    problems+=("kubectl ${kubectl_version:-of unknown version} is not within one minor version of Kubernetes $MINIKUBE_KUBERNETES_VERSION")
  fi
  if [[ -z "$helm_version" || "${helm_version%%.*}" != 3 ]] || ! version_at_least "$helm_version" "$HELM_MIN"; then
    problems+=("helm ${helm_version:-of unknown version} is not Helm 3 at or above $HELM_MIN")
  fi
  if ((${#problems[@]})); then
    for tool in "${problems[@]}"; do log "$tool"; done
    return 1
  fi
  log "bash $BASH_VERSION, minikube $minikube_version, kubectl $kubectl_version, helm $helm_version"
}

# The docker container runtime: the images are built with Minikube's own Docker daemon.
start_minikube() {
  if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
    log "profile $PROFILE is already running"
  else
    minikube start --profile "$PROFILE" --memory "$MEMORY" --cpus "$CPUS" \
      --kubernetes-version "$MINIKUBE_KUBERNETES_VERSION" --container-runtime docker
  fi
  "${KUBECTL[@]}" get nodes >/dev/null
}

add_dapr_chart_repository() {
  helm repo add dapr https://dapr.github.io/helm-charts/ --force-update >/dev/null
  helm repo update dapr >/dev/null
}

# The content tag of each service image (container/image-tag.sh): the same content gives the
# same tag, so an unchanged service is a cache hit, and a changed one gets a new tag that rolls
# its Deployment out. Written to a file: a step runs in a subshell.
compute_image_tags() {
  local service tag
  : >"$DEPLOY_WORK/image-overrides.txt"
  for service in "${SERVICES[@]}"; do
    tag="$(bash "$DEPLOY_DIR/container/image-tag.sh" "$service")"
    echo "learnflow/$service=learnflow/$service:$tag" >>"$DEPLOY_WORK/image-overrides.txt"
  done
}

# Both service images, built by Minikube's Docker daemon (`minikube image build` exits 0 when
# the build fails, kubernetes/minikube#16576), then looked up in `minikube image ls`.
load_images() {
  local override image service listed docker_env
  docker_env="$(minikube --profile "$PROFILE" docker-env --shell bash)"
  eval "$docker_env"
  for override in "${IMAGE_OVERRIDES[@]}"; do
    image="${override#*=}"
    service="${override%%=*}"
    service="${service#learnflow/}"
    log "building $image inside Minikube"
    (cd "$REPO_ROOT" && docker build --tag "$image" \
      --file "phase-3-backend-services/$service/Dockerfile" \
      --build-arg "UV_VERSION=$UV_VERSION" .)
  done
  listed="$(minikube --profile "$PROFILE" image ls)"
  for override in "${IMAGE_OVERRIDES[@]}"; do
    image="${override#*=}"
    if ! grep -Fxq -e "$image" -e "docker.io/$image" <<<"$listed"; then
      log "$image is not among Minikube's images after the build"
      return 1
    fi
  done
}

step "preflight: bash, minikube, kubectl, helm, docker, git present and recent enough" preflight
step "service image tags computed from their content" compute_image_tags
mapfile -t IMAGE_OVERRIDES <"$DEPLOY_WORK/image-overrides.txt"
step "minikube profile $PROFILE running (memory $MEMORY, cpus $CPUS, Kubernetes $MINIKUBE_KUBERNETES_VERSION)" start_minikube
step "Dapr Helm chart repository added" add_dapr_chart_repository
run_deploy_steps
