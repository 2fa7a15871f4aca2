#!/usr/bin/env bash
# The sandbox node: PID 1 of the pid namespace sandbox-up.sh creates, inside that call's own
# network and mount namespaces. Starts etcd, the Kubernetes control plane, containerd, the
# kubelet, kube-proxy and CoreDNS in order, each checked ready, then watches them. When this
# process ends (SIGTERM, a piece dying, or its parent killed) the kernel kills everything left
# in the pid namespace, and the network namespace and every mount made here go with it.
#   node.sh RUN_DIR BIN_DIR IMAGES_JSON
set -euo pipefail
RUN="$1" BIN="$2" IMAGES_JSON="$3"
source "$(dirname "$0")/node-config.sh"
KUBECTL=("$BIN/kubectl" --kubeconfig "$RUN/pki/admin.kubeconfig")
mkdir -p "$RUN/logs"

log() { printf '[sandbox-node] %s\n' "$*" >&2; }
NAMES=() PIDS=()

stop_all() {
  local i
  trap - TERM INT
  log "stopping"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  sleep 1
  exit 0
}
trap stop_all TERM INT

start() {  # start NAME COMMAND...: runs a piece in the background, its output to logs/NAME.log
  local name="$1"
  shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  NAMES+=("$name")
  PIDS+=($!)
}

# wait_ready NAME SECONDS COMMAND...: until COMMAND succeeds; fails early if NAME has died.
wait_ready() {
  local name="$1" seconds="$2" deadline i pid=""
  shift 2
  for i in "${!NAMES[@]}"; do [[ ${NAMES[i]} == "$name" ]] && pid=${PIDS[i]}; done
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      log "$name did not become ready in ${seconds} s; last lines of logs/$name.log:"
      tail -n 25 "$RUN/logs/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "$name ready ($((SECONDS - started)) s)"
}

https_ok() {  # https_ok URL: answers 200 to the admin client
  curl -sf --max-time 2 --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" \
    --key "$RUN/pki/admin.key" "$1"
}

node_ready() {
  [[ "$("${KUBECTL[@]}" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

started=$SECONDS

# Network: a veth pair with both ends here (the kernel has no dummy device); no default route,
# so nothing in the sandbox can reach beyond the namespace.
ip link set lo up
ip link add lf0 type veth peer name lf1
ip addr add "$NODE_IP/24" dev lf0
ip link set lf0 up
ip link set lf1 up
ip route add "$SERVICE_CIDR" dev lf0
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

# Paths containerd and the kubelet use whatever their configuration says: private to this
# mount namespace, gone with it.
for dir in /run/containerd /var/log/containers /var/log/pods /var/lib/kubelet; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done

start etcd "$BIN/etcd" --name sandbox --data-dir "$RUN/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster sandbox=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
wait_ready etcd 60 curl -sf --max-time 2 http://127.0.0.1:2379/health

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
  --client-ca-file "$RUN/pki/ca.crt" \
  --kubelet-client-certificate "$RUN/pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$RUN/pki/apiserver-kubelet-client.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$RUN/pki/sa.pub" \
  --service-account-signing-key-file "$RUN/pki/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --kubelet-preferred-address-types InternalIP \
  --allow-privileged=true --profiling=false
wait_ready kube-apiserver 120 https_ok "https://$NODE_IP:6443/readyz"

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$RUN/pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$RUN/pki/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$RUN/pki/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --cluster-signing-cert-file "$RUN/pki/ca.crt" --cluster-signing-key-file "$RUN/pki/ca.key" \
  --root-ca-file "$RUN/pki/ca.crt" --service-account-private-key-file "$RUN/pki/sa.key" \
  --profiling=false
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$RUN/pki/scheduler.kubeconfig" \
  --authentication-kubeconfig "$RUN/pki/scheduler.kubeconfig" \
  --authorization-kubeconfig "$RUN/pki/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false

start containerd containerd --config "$RUN/containerd/config.toml"
wait_ready containerd 60 ctr --address "$CONTAINERD_SOCKET" version
# Four at a time: unpacking is mostly disk writes.
python3 -c 'import json,sys; [print(i["archive"]) for i in json.load(open(sys.argv[1]))]' "$IMAGES_JSON" \
  | xargs -P 4 -I{} ctr --address "$CONTAINERD_SOCKET" -n k8s.io images import {} >/dev/null
log "images imported ($((SECONDS - started)) s)"

# The kubelet needs its cgroup root in every v1 hierarchy; cpuset children start empty.
for hierarchy in /sys/fs/cgroup/*/; do
  [[ -e "$hierarchy/cgroup.procs" ]] || continue
  mkdir -p "$hierarchy/$CGROUP_ROOT"
  if [[ -e "$hierarchy/cpuset.cpus" ]]; then
    cat "$hierarchy/cpuset.cpus" >"$hierarchy/$CGROUP_ROOT/cpuset.cpus"
    cat "$hierarchy/cpuset.mems" >"$hierarchy/$CGROUP_ROOT/cpuset.mems"
  fi
done

start kubelet "$BIN/kubelet" --config "$RUN/kubelet/config.yaml" \
  --kubeconfig "$RUN/pki/kubelet.kubeconfig" --root-dir /var/lib/kubelet \
  --cert-dir "$RUN/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
wait_ready kubelet 120 node_ready
touch "$RUN/kubelet-started"

start kube-proxy "$BIN/kube-proxy" --config "$RUN/kube-proxy/config.yaml"
wait_ready kube-proxy 60 curl -sf --max-time 2 http://127.0.0.1:10256/healthz
start coredns "$BIN/coredns" -conf "$RUN/coredns/Corefile"
wait_ready coredns 60 curl -sf --max-time 2 http://127.0.0.1:8181/ready

log "node ready in $((SECONDS - started)) s"
touch "$RUN/node-ready"

# Watch: any piece dying ends the node (and, through the pid namespace, everything in it).
while true; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      log "${NAMES[i]} exited; last lines of logs/${NAMES[i]}.log:"
      tail -n 25 "$RUN/logs/${NAMES[i]}.log" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
