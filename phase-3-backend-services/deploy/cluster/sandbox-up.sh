#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, in network, mount and pid namespaces of its
# own, with the LearnFlow deploy applied exactly as minikube-up.sh applies it (same library,
# same overlay; only the images differ: built here and imported, never pulled).
#
#   sandbox-up.sh            build (cached), start, deploy, verify; stay up until Ctrl-C/SIGTERM
#   sandbox-up.sh --check    the same, then tear down and exit with the verification's status
#   sandbox-up.sh --node-only  only the node (Kubernetes without Dapr or LearnFlow), until Ctrl-C
#
# While it runs, `deploy/cluster/kubectl.sh ...` talks to it. State of the newest run:
# /tmp/learnflow-cluster/latest/state.env. Nothing here reaches beyond loopback or the
# namespaces created here; kernel settings the kubelet changes are put back.
source "$(dirname "$0")/../../scripts/lib.sh"
CLUSTER_DIR="$PHASE_DIR/deploy/cluster"
DEPLOY_DIR="$PHASE_DIR/deploy"
source "$CLUSTER_DIR/node-config.sh"

MODE=serve
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  --node-only) MODE=node ;;
  *) die "usage: sandbox-up.sh [--check | --node-only]" ;;
esac

RUNS_ROOT="${LEARNFLOW_CLUSTER_RUNS:-/tmp/learnflow-cluster}"
KEEP_RUNS=3
# Kernel settings the kubelet writes at start for the whole machine (not per namespace).
GLOBAL_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes)

preflight() {
  [[ $EUID -eq 0 ]] || die "the sandbox cluster needs root (namespaces, mounts, cgroups)"
  [[ -e /sys/fs/cgroup/memory/cgroup.procs && -e /sys/fs/cgroup/cpu/cgroup.procs ]] \
    || die "cgroup v1 hierarchies (cpu, memory, ...) are not mounted under /sys/fs/cgroup"
  bash "$CLUSTER_DIR/install-host-packages.sh"
}

record_sysctls() {  # record_sysctls FILE
  local name
  for name in "${GLOBAL_SYSCTLS[@]}"; do echo "$name=$(sysctl -n "$name")"; done >"$1"
}

restore_sysctls() {
  local line
  [[ -f "$RUN/sysctl-before" ]] || return 0
  while IFS= read -r line; do sysctl -qw "$line" >/dev/null || log "could not restore $line"; done \
    <"$RUN/sysctl-before"
}

# Remove the cgroups the kubelet made (the pid namespace's processes are gone by now; rmdir
# refuses any cgroup that still has a process).
remove_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -d "$hierarchy$CGROUP_ROOT" ]] || continue
    find "$hierarchy$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

prune_old_runs() {
  local old
  while IFS= read -r old; do rm -rf "$old"; done < <(
    find "$RUNS_ROOT" -mindepth 1 -maxdepth 1 -type d -name 'run-*' -printf '%T@ %p\n' \
      | sort -rn | tail -n +$((KEEP_RUNS + 1)) | cut -d' ' -f2-)
}

NODE_PID=""
teardown() {
  local status=$? deadline
  trap - EXIT INT TERM
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    log "stopping the sandbox node"
    kill -TERM "$(cat "$RUN/holder.pid" 2>/dev/null || echo "$NODE_PID")" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while kill -0 "$NODE_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -KILL "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  remove_cgroups
  restore_sysctls
  # Images and container layers are large and rebuilt from the cache in seconds.
  rm -rf "$RUN/containerd/root" "$RUN/etcd"
  rm -f "$RUNS_ROOT/latest/state.env"
  log "stopped (exit $status)"
  exit "$status"
}

# Run a command in the sandbox's network namespace (where the API server and the pods are).
in_sandbox() { nsenter --target "$(cat "$RUN/holder.pid")" --net -- "$@"; }

start_node() {
  local deadline
  # setpriv: if this script dies, unshare dies; --kill-child: then node.sh (PID 1 of the new
  # pid namespace) dies, and with it every process of the sandbox. No orphan in any case.
  setpriv --pdeathsig KILL -- unshare --fork --pid --mount-proc --net --mount \
    --propagation private --kill-child=KILL -- \
    bash "$CLUSTER_DIR/node.sh" "$RUN" "$BIN" "$IMAGES_JSON" 2>"$RUN/logs/node.log" &
  NODE_PID=$!
  deadline=$((SECONDS + 600))
  # The holder (PID 1 inside) is unshare's child; its host pid is what nsenter needs.
  until [[ -s "$RUN/holder.pid" ]]; do
    pgrep -P "$NODE_PID" >"$RUN/holder.pid" 2>/dev/null || true
    kill -0 "$NODE_PID" 2>/dev/null || { cat "$RUN/logs/node.log" >&2; die "the sandbox node did not start"; }
    sleep 0.2
  done
  until [[ -e "$RUN/node-ready" ]]; do
    if [[ -e "$RUN/kubelet-started" && ! -e "$RUN/sysctl-restored" ]]; then
      restore_sysctls
      touch "$RUN/sysctl-restored"
    fi
    if ! kill -0 "$NODE_PID" 2>/dev/null || ((SECONDS > deadline)); then
      cat "$RUN/logs/node.log" >&2
      die "the sandbox node did not become ready (logs: $RUN/logs)"
    fi
    sleep 1
  done
  restore_sysctls
  grep -v '^\[sandbox-node\] .* ready (' "$RUN/logs/node.log" >&2 || true
  log "node ready: $(grep -c ' ready (' "$RUN/logs/node.log") pieces, $(tail -n 1 "$RUN/logs/node.log")"
}

write_state() {
  cat >"$RUN/state.env" <<EOF
RUN=$RUN
BIN=$BIN
HOLDER_PID=$(cat "$RUN/holder.pid")
LAUNCHER_PID=$$
KUBECONFIG=$RUN/pki/admin.kubeconfig
EOF
  ln -sfn "$RUN" "$RUNS_ROOT/latest"
}

# hostPath volumes stand in for Minikube's storage provisioner: claims with no storage class
# bind to them (PostgreSQL, Kafka, three Dapr scheduler members, spares). World-writable because each workload runs as its own non-root user.
create_volumes() {
  local i
  for i in 1 2 3 4 5 6 7 8; do
    mkdir -p "$RUN/volumes/pv-$i"
    chmod 0777 "$RUN/volumes/pv-$i"
    cat <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: sandbox-pv-$i
spec:
  capacity: {storage: 4Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: $RUN/volumes/pv-$i, type: Directory}
---
EOF
  done | "${KUBECTL[@]}" apply -f - >/dev/null
}

# Kustomize image overrides (name=newName:newTag) for every image built here in place of one
# the manifests name: the same overlay as on Minikube, with the images this machine made.
image_overrides() {
  python3 - "$IMAGES_JSON" <<'PY'
import json, sys
for image in json.load(open(sys.argv[1])):
    if image.get("replaces"):
        print(f"{image['replaces'].rsplit(':', 1)[0]}={image['ref']}")
PY
}

deploy() {
  DEPLOY_WORK="$RUN/deploy"
  DEPLOY_TITLE="LearnFlow on the sandbox Kubernetes ($RUN)"
  # shellcheck source=../lib/deploy-steps.sh
  source "$DEPLOY_DIR/lib/deploy-steps.sh"
  HELM=(in_sandbox env HELM_CACHE_HOME="$RUN/helm/cache" HELM_CONFIG_HOME="$RUN/helm/config"
    HELM_DATA_HOME="$RUN/helm/data" "$BIN/helm" --kubeconfig "$RUN/pki/admin.kubeconfig")
  # The chart of the pinned Dapr module: the same release the images were built from.
  DAPR_CHART=("$(go env GOMODCACHE)/github.com/dapr/dapr@v$DAPR_VERSION/charts/dapr")
  OVERLAY="$DEPLOY_DIR/overlays/minikube"
  mapfile -t IMAGE_OVERRIDES < <(image_overrides)
  DAPR_HELM_EXTRA=()
  load_images() { log "images were imported into the node's containerd when it started"; }
  run_deploy_steps
  print_summary
  touch "$RUN/deployed"
}

main() {
  preflight
  mkdir -p "$RUNS_ROOT"
  prune_old_runs
  RUN="$RUNS_ROOT/run-$(date +%Y%m%d-%H%M%S)-$$"
  mkdir -p "$RUN/logs"
  log "run directory $RUN"
  BIN="$(bash "$CLUSTER_DIR/build-binaries.sh")"
  IMAGES_JSON="$(bash "$CLUSTER_DIR/build-images.sh" "$BIN")"
  write_node_config
  remove_cgroups # empty ones a killed earlier run left; cgroups still in use stay
  record_sysctls "$RUN/sysctl-before"
  trap teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_node
  write_state
  KUBECTL=(in_sandbox "$BIN/kubectl" --kubeconfig "$RUN/pki/admin.kubeconfig")
  create_volumes
  log "sandbox Kubernetes $KUBERNETES_VERSION ready; kubectl: $CLUSTER_DIR/kubectl.sh"
  [[ $MODE == node ]] || deploy
  if [[ $MODE == check ]]; then exit 0; fi
  log "running until Ctrl-C"
  while kill -0 "$NODE_PID" 2>/dev/null; do sleep 1; done
  die "the sandbox node stopped (logs: $RUN/logs)"
}

main
