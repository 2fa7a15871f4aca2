# Writes the sandbox node's certificates and configuration files into a run directory.
# Sourced by sandbox-up.sh; every function writes under "$RUN" only.
#
# Addresses (all inside the sandbox's own network namespace, never routed off it):
#   node 10.0.0.1 (veth), pods 10.244.0.0/24 (CNI bridge), services 10.96.0.0/16,
#   API server 10.96.0.1 / 10.0.0.1:6443, cluster DNS (CoreDNS on the node) 10.0.0.1:53.

NODE_NAME=sandbox
NODE_IP=10.0.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
CONTAINERD_SOCKET=/run/containerd/containerd.sock
# kubelet puts every pod cgroup under this root, so teardown knows exactly what to remove.
CGROUP_ROOT=learnflow-sandbox

make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=learnflow-sandbox-ca" \
    -keyout "$RUN/pki/ca.key" -out "$RUN/pki/ca.crt" 2>/dev/null
}

# make_cert NAME SUBJECT [SUBJECT_ALT_NAMES]: a certificate signed by the sandbox CA.
make_cert() {
  local name="$1" subject="$2" sans="${3:-}" ext="$RUN/pki/$1.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -z "$sans" ]] || echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$RUN/pki/$name.key" -out "$RUN/pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$RUN/pki/$name.csr" -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" \
    -CAcreateserial -days 3 -extfile "$ext" -out "$RUN/pki/$name.crt" 2>/dev/null
  rm -f "$RUN/pki/$name.csr" "$ext"
}

# make_kubeconfig NAME: a kubeconfig for the client certificate NAME.
make_kubeconfig() {
  cat >"$RUN/pki/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: sandbox
    cluster:
      certificate-authority: $RUN/pki/ca.crt
      server: https://$NODE_IP:6443
users:
  - name: $1
    user:
      client-certificate: $RUN/pki/$1.crt
      client-key: $RUN/pki/$1.key
contexts:
  - name: sandbox
    context: {cluster: sandbox, user: $1}
current-context: sandbox
EOF
}

write_pki() {
  mkdir -p -m 700 "$RUN/pki"
  make_ca
  make_cert apiserver "/CN=kube-apiserver" \
    "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  make_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  make_cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  make_cert admin "/O=system:masters/CN=learnflow-admin"
  make_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  make_cert controller-manager "/CN=system:kube-controller-manager"
  make_cert scheduler "/CN=system:kube-scheduler"
  make_cert kube-proxy "/CN=system:kube-proxy"
  openssl genrsa -out "$RUN/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$RUN/pki/sa.key" -pubout -out "$RUN/pki/sa.pub" 2>/dev/null
  local name
  for name in admin kubelet controller-manager scheduler kube-proxy; do make_kubeconfig "$name"; done
}

write_containerd_config() {
  mkdir -p "$RUN/containerd" "$RUN/cni/net.d" "$RUN/cni/ipam"
  cat >"$RUN/containerd/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
# Sockets live in /run/containerd, a tmpfs private to the node's mount namespace (and short:
# a run directory can be longer than a unix socket path may be).
[grpc]
  address = "$CONTAINERD_SOCKET"
[ttrpc]
  address = "$CONTAINERD_SOCKET.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # CAP_SYS_RESOURCE is missing in this sandbox: runc may not raise oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$RUN/containerd/certs.d"
EOF
  # Every registry a manifest could name points at a closed loopback port: a pull fails here,
  # at once, instead of leaving the machine.
  local registry
  for registry in docker.io ghcr.io registry.k8s.io quay.io _default; do
    mkdir -p "$RUN/containerd/certs.d/$registry"
    cat >"$RUN/containerd/certs.d/$registry/hosts.toml" <<EOF
server = "http://127.0.0.1:1"
[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
  done
  # No masquerading: nothing leaves the namespace, so nothing needs translating on the way out.
  cat >"$RUN/cni/net.d/10-learnflow.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "learnflow-sandbox",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$RUN/kubelet"
  echo "nameserver $NODE_IP" >"$RUN/kubelet/resolv.conf"
  cat >"$RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $RUN/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $RUN/pki/kubelet-serving.crt
tlsPrivateKeyFile: $RUN/pki/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
# cgroup v1 only on these machines (kubelet >= 1.35 refuses it).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /$CGROUP_ROOT
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $RUN/kubelet/resolv.conf
failSwapOn: false
podLogsDir: $RUN/pod-logs
maxPods: 40
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 200Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
}

write_kube_proxy_config() {
  mkdir -p "$RUN/kube-proxy"
  # conntrack limits left alone: they are global kernel settings, not the namespace's.
  cat >"$RUN/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $RUN/pki/kube-proxy.kubeconfig}
mode: iptables
nodePortAddresses: ["$NODE_IP/32"]
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

write_coredns_config() {
  mkdir -p "$RUN/coredns"
  # Cluster names only: no forward plugin, so no name outside the cluster resolves.
  cat >"$RUN/coredns/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $RUN/pki/admin.kubeconfig sandbox
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF
}

write_node_config() {
  write_pki
  write_containerd_config
  write_kubelet_config
  write_kube_proxy_config
  write_coredns_config
}
