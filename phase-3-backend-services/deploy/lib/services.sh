# shellcheck shell=bash
# The LearnFlow services the deploy builds and rolls out: the apps/<name>.yaml resources of the
# Kustomize base that have a Dockerfile beside their code (the fastapi-dapr-agent skill
# registers a new service there). Usage: mapfile -t SERVICES < <(learnflow_services PHASE_DIR)
learnflow_services() {
  local phase_dir="$1" service
  sed -n 's|^  - apps/\([a-z0-9-]*\)\.yaml$|\1|p' "$phase_dir/deploy/base/kustomization.yaml" \
    | while read -r service; do
      if [[ -f "$phase_dir/$service/Dockerfile" ]]; then echo "$service"; fi
    done
}
