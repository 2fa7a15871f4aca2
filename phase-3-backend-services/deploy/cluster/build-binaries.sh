#!/usr/bin/env bash
# Builds every binary the sandbox cluster needs, once, from the pinned releases (versions.env),
# through the Go module proxy only; later runs reuse the cached binaries (< 2 s).
#   Kubernetes  kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#   etcd        etcd etcdctl          CoreDNS  coredns          helm  helm
#   pause       gcc -static of build/pause/linux/pause.c from the k8s.io/kubernetes module
#   Dapr        operator injector sentry (+ daprd placement scheduler from scripts/build-dapr.sh)
# Each component is cached under $LEARNFLOW_CACHE/cluster/<component>-v<version>/bin with a
# <binary>.version stamp; the directory printed on stdout holds symlinks to all of them.
# Progress and timings go to stderr. Never commit what this builds.
source "$(dirname "$0")/../../scripts/lib.sh"

CLUSTER_CACHE="$LEARNFLOW_CACHE/cluster"
K8S_DIR="$CLUSTER_CACHE/kubernetes-v$KUBERNETES_VERSION"
ETCD_DIR="$CLUSTER_CACHE/etcd-v$ETCD_VERSION"
COREDNS_DIR="$CLUSTER_CACHE/coredns-v$COREDNS_VERSION"
HELM_DIR="$CLUSTER_CACHE/helm-v$HELM_VERSION"
PAUSE_DIR="$CLUSTER_CACHE/pause-k8s-v$KUBERNETES_VERSION"
DAPR_CP_DIR="$CLUSTER_CACHE/dapr-v$DAPR_VERSION"
DAPR_BIN_DIR="$LEARNFLOW_CACHE/dapr/v$DAPR_VERSION/bin"   # scripts/build-dapr.sh's output
DAPR_SRC_DIR="$LEARNFLOW_CACHE/dapr/v$DAPR_VERSION/src"   # scripts/build-dapr.sh's source copy
OUT_DIR="$CLUSTER_CACHE/bin-k8s$KUBERNETES_VERSION-etcd$ETCD_VERSION-coredns$COREDNS_VERSION-helm$HELM_VERSION-dapr$DAPR_VERSION"

K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
ETCD_BINARIES=(etcd etcdctl)
DAPR_CP_BINARIES=(operator injector sentry)
DAPR_BINARIES=(daprd placement scheduler)

# "binary|cache dir|version" for every binary of the output directory.
ENTRIES=()
for b in "${K8S_BINARIES[@]}"; do ENTRIES+=("$b|$K8S_DIR/bin|$KUBERNETES_VERSION"); done
for b in "${ETCD_BINARIES[@]}"; do ENTRIES+=("$b|$ETCD_DIR/bin|$ETCD_VERSION"); done
ENTRIES+=("coredns|$COREDNS_DIR/bin|$COREDNS_VERSION" "helm|$HELM_DIR/bin|$HELM_VERSION"
  "pause|$PAUSE_DIR/bin|$KUBERNETES_VERSION")
for b in "${DAPR_CP_BINARIES[@]}"; do ENTRIES+=("$b|$DAPR_CP_DIR/bin|$DAPR_VERSION"); done
for b in "${DAPR_BINARIES[@]}"; do ENTRIES+=("$b|$DAPR_BIN_DIR|$DAPR_VERSION"); done

cached() {  # $1 = binary path, $2 = version: built and stamped with that version
  [[ -x "$1" && -f "$1.version" && "$(<"$1.version")" == "$2" ]]
}

all_linked() {  # every binary cached and linked from the output directory
  local entry name dir version
  for entry in "${ENTRIES[@]}"; do
    IFS='|' read -r name dir version <<<"$entry"
    cached "$dir/$name" "$version" || return 1
    [[ "$(readlink "$OUT_DIR/$name" 2>/dev/null)" == "$dir/$name" ]] || return 1
  done
}

# Fast path: no go command, no binary executed.
if all_linked; then echo "$OUT_DIR"; exit 0; fi

mkdir -p "$CLUSTER_CACHE"
exec {lock_fd}>"$CLUSTER_CACHE/.build.lock"
if ! flock -n "$lock_fd"; then
  log "another build-binaries.sh is building; waiting for it"
  flock "$lock_fd"
fi
if all_linked; then echo "$OUT_DIR"; exit 0; fi

need go "build the cluster binaries"
need python3 "read go mod download output"
export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
GO_BUILD=(go build -p 2 -v -trimpath)

module_time() {  # $1 = module, $2 = version: the release time the proxy records (for buildDate)
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' \
    "$(go env GOMODCACHE)/cache/download/$1/@v/$2.info"
}

consumer_go_lines() {  # $1 = go.mod of the module consumed: a go line (>= 1.24, for `tool`) and
  # the godebug defaults that module builds with, so runtime behaviour matches upstream builds.
  local go_line godebug
  go_line="$(awk '$1 == "go" {print $2; exit}' "$1")"
  godebug="$(grep '^godebug ' "$1" || true)"
  [[ -n "$godebug" ]] || godebug="godebug default=go$(cut -d. -f1,2 <<<"$go_line")"
  if [[ "$(printf '%s\n' "$go_line" 1.24.0 | sort -V | sed -n 1p)" == "$go_line" ]]; then
    go_line=1.24.0
  fi
  printf 'go %s\n\n%s\n' "$go_line" "$godebug"
}

# expect_version BINARY LINE ARGS...: `BINARY ARGS` prints LINE (the version it was stamped
# with), or the build stops naming what it printed instead.
expect_version() {
  local binary="$1" expected="$2" output
  shift 2
  output="$("$binary" "$@" 2>&1)" || true
  grep -qxF "$expected" <<<"$output" \
    || die "$(basename "$binary") reports '$(head -n 1 <<<"$output")', not '$expected'"
}

install_built() {  # $1 = tmp dir, $2 = bin dir, $3 = version, rest = binaries: stamp and move in
  local tmp="$1" bin="$2" version="$3" b
  shift 3
  mkdir -p "$bin"
  for b in "$@"; do
    mv -f "$tmp/$b" "$bin/$b"
    echo "$version" >"$bin/$b.version"
  done
  rm -rf "$tmp"
}

missing_of() {  # $1 = bin dir, $2 = version, rest = binaries: prints those not cached
  local bin="$1" version="$2" b
  shift 2
  for b in "$@"; do cached "$bin/$b" "$version" || echo "$b"; done
}

# refresh_consumer_module WORK LABEL WHY: WORK/go.mod.new (and WORK/main.go.new, when written)
# become the consumer module, resolved by `go mod tidy`, when they differ from what the last
# tidy resolved or go.sum is missing; else they are dropped. WHY goes into the progress line.
refresh_consumer_module() {
  local work="$1" label="$2" why="$3"
  if ! cmp -s "$work/go.mod.new" "$work/go.mod.generated" || [[ ! -f "$work/go.sum" ]] \
      || { [[ -f "$work/main.go.new" ]] && ! cmp -s "$work/main.go.new" "$work/main.go"; }; then
    cp "$work/go.mod.new" "$work/go.mod"
    [[ ! -f "$work/main.go.new" ]] || mv "$work/main.go.new" "$work/main.go"
    rm -f "$work/go.sum"
    log "  resolving dependencies ($why)"
    (cd "$work" && with_download_progress "$label go mod tidy" "$work/tidy.log" 5 go mod tidy -x)
    mv "$work/go.mod.new" "$work/go.mod.generated"
  else
    rm -f "$work/go.mod.new" "$work/main.go.new"
  fi
}

# go_build_into LABEL DIR TMP LDFLAGS PACKAGES...: `go build` of PACKAGES in the module DIR
# into a fresh TMP, with progress; stops when the build fails.
go_build_into() {
  local label="$1" dir="$2" tmp="$3" ldflags="$4"
  shift 4
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$dir" && "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$tmp/" "$@" 2>&1) \
      | go_build_progress "$label"; then
    die "step 'compile $label' failed (compiler output above)"
  fi
}

# --- 1. Kubernetes ----------------------------------------------------------------------------
build_kubernetes() {
  local -a todo
  mapfile -t todo < <(missing_of "$K8S_DIR/bin" "$KUBERNETES_VERSION" "${K8S_BINARIES[@]}")
  ((${#todo[@]})) || return 0
  local started=$SECONDS v="v$KUBERNETES_VERSION" staging_v kube_dir work="$K8S_DIR/work"
  staging_v="v0.$(cut -d. -f2,3 <<<"$KUBERNETES_VERSION")"
  log "kubernetes $v: ${todo[*]}"
  kube_dir="$(go_module_dir "k8s.io/kubernetes@$v")"
  # The module zip has no staging/: replace each staging module (the go.mod's `=> ./staging/...`
  # replaces) with its published release v0.<minor>.<patch>; other replaces are kept as they are.
  local replaces
  replaces="$(awk '
      $1 == "replace" && $2 == "(" {block = 1; next}
      block && $1 == ")" {block = 0; next}
      block || $1 == "replace" {sub(/^replace[ \t]+/, ""); sub(/^[ \t]+/, ""); print}' "$kube_dir/go.mod")"
  [[ -n "$replaces" ]] || die "step 'read staging modules' found no replace lines in $kube_dir/go.mod"
  local line mod target n_staging=0 replace_block=""
  while read -r line; do
    [[ -z "$line" || "$line" == //* ]] && continue
    mod="${line%% *}" target="${line##*=> }"
    if [[ "$target" == "./staging/src/$mod" ]]; then
      replace_block+=$'\t'"$mod => $mod $staging_v"$'\n'
      n_staging=$((n_staging + 1))
    elif [[ "$target" == .* || "$target" == /* ]]; then
      die "step 'read staging modules': cannot carry the local replace '$line' into a consumer module"
    else
      replace_block+=$'\t'"$line"$'\n'
    fi
  done <<<"$replaces"
  log "  consumer module: k8s.io/kubernetes $v with $n_staging staging modules at $staging_v"

  mkdir -p "$work"
  local gomod="$work/go.mod.new" b
  {
    echo "module learnflow.local/kubernetes-binaries"
    echo
    consumer_go_lines "$kube_dir/go.mod"
    echo
    echo "tool ("
    for b in "${K8S_BINARIES[@]}"; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$b"; done
    echo ")"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    printf 'replace (\n%s)\n' "$replace_block"
  } >"$gomod"
  refresh_consumer_module "$work" kubernetes "go mod tidy; first run downloads a few hundred modules"

  local minor build_date ldflags="-s -w" pkg key val
  minor="$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
  build_date="$(module_time k8s.io/kubernetes "$v")"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for key in "gitVersion=$v" "gitMajor=${KUBERNETES_VERSION%%.*}" "gitMinor=$minor" \
        "gitTreeState=clean" "buildDate=$build_date" "gitCommit="; do  # commit: not on the proxy
      ldflags+=" -X $pkg.$key"
    done
  done
  local tmp="$K8S_DIR/bin.tmp" pkgs=()
  for b in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "  compiling ${todo[*]} (2 cores: ~10 min cold); progress = packages compiled"
  go_build_into kubernetes "$work" "$tmp" "$ldflags" "${pkgs[@]}"

  for b in "${todo[@]}"; do [[ -x "$tmp/$b" ]] || die "step 'compile kubernetes' made no $b"; done
  for b in "${todo[@]}"; do
    if [[ $b == kubectl ]]; then
      expect_version "$tmp/kubectl" "Client Version: $v" version --client
    else
      expect_version "$tmp/$b" "Kubernetes $v" --version
    fi
  done
  install_built "$tmp" "$K8S_DIR/bin" "$KUBERNETES_VERSION" "${todo[@]}"
  log "built kubernetes $v (${todo[*]}) in $((SECONDS - started)) s"
}

# --- 2. etcd ----------------------------------------------------------------------------------
build_etcd() {
  local -a todo
  mapfile -t todo < <(missing_of "$ETCD_DIR/bin" "$ETCD_VERSION" "${ETCD_BINARIES[@]}")
  ((${#todo[@]})) || return 0
  local started=$SECONDS v="v$ETCD_VERSION" server_dir work="$ETCD_DIR/work"
  log "etcd $v: ${todo[*]}"
  server_dir="$(go_module_dir "go.etcd.io/etcd/server/v3@$v")"
  mkdir -p "$work"
  local gomod="$work/go.mod.new"
  {
    echo "module learnflow.local/etcd"
    echo
    consumer_go_lines "$server_dir/go.mod"
    echo
    echo "tool go.etcd.io/etcd/etcdctl/v3"
    echo
    echo "require ("
    printf '\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n' "$v" "$v"
    echo ")"
  } >"$gomod"
  # etcd's own main (server/main.go of the release) is exactly this.
  cat >"$work/main.go.new" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
  refresh_consumer_module "$work" etcd "go mod tidy"
  local tmp="$ETCD_DIR/bin.tmp" pkgs=()
  for b in "${todo[@]}"; do
    case "$b" in
      etcd) pkgs+=(learnflow.local/etcd) ;;
      etcdctl) pkgs+=(go.etcd.io/etcd/etcdctl/v3) ;;
    esac
  done
  log "  compiling ${todo[*]}; progress = packages compiled"
  # `go build -o dir/` names a binary after its package path's last element (without /vN).
  go_build_into etcd "$work" "$tmp" "-s -w" "${pkgs[@]}"
  for b in "${todo[@]}"; do [[ -x "$tmp/$b" ]] || die "step 'compile etcd' made no $b"; done
  [[ ! -x "$tmp/etcd" ]] || expect_version "$tmp/etcd" "etcd Version: $ETCD_VERSION" --version
  [[ ! -x "$tmp/etcdctl" ]] || expect_version "$tmp/etcdctl" "etcdctl version: $ETCD_VERSION" version
  install_built "$tmp" "$ETCD_DIR/bin" "$ETCD_VERSION" "${todo[@]}"
  log "built etcd $v (${todo[*]}) in $((SECONDS - started)) s"
}

# go install pkg@version builds a released module as the main module (its own go.mod, go.sum,
# go and godebug lines) straight from the module cache; fine for modules without replaces.
go_install_at() {  # $1 = label, $2 = tmp bin dir, $3 = ldflags, $4 = package@version
  rm -rf "$2" && mkdir -p "$2"
  if ! GOBIN="$2" go install -p 2 -v -trimpath -ldflags "$3" "$4" 2>&1 | go_build_progress "$1"; then
    die "step 'compile $1' failed (output above; a 'go: ... reading' error names a module the proxy refused)"
  fi
}

# --- 3. CoreDNS -------------------------------------------------------------------------------
build_coredns() {
  cached "$COREDNS_DIR/bin/coredns" "$COREDNS_VERSION" && return 0
  local started=$SECONDS v="v$COREDNS_VERSION" tmp="$COREDNS_DIR/bin.tmp" plugins p
  log "coredns $v: compiling (default plugin set); progress = packages compiled"
  go_install_at coredns "$tmp" "-s -w" "github.com/coredns/coredns@$v"
  expect_version "$tmp/coredns" "CoreDNS-$COREDNS_VERSION" -version
  plugins="$("$tmp/coredns" -plugins 2>&1)"
  for p in kubernetes forward cache errors health ready loop; do
    grep -qxE "[[:space:]]*(dns\.)?$p" <<<"$plugins" || die "coredns $v lacks the '$p' plugin"
  done
  install_built "$tmp" "$COREDNS_DIR/bin" "$COREDNS_VERSION" coredns
  log "built coredns $v in $((SECONDS - started)) s"
}

# --- 4. helm ----------------------------------------------------------------------------------
build_helm() {
  cached "$HELM_DIR/bin/helm" "$HELM_VERSION" && return 0
  local started=$SECONDS v="v$HELM_VERSION" tmp="$HELM_DIR/bin.tmp" helm_dir client_go k8s_minor
  log "helm $v"
  helm_dir="$(go_module_dir "helm.sh/helm/v3@$v")"
  [[ -f "$helm_dir/internal/version/version.go" ]] \
    && grep -q '^\s*version = ' "$helm_dir/internal/version/version.go" \
    || die "helm $v has no helm.sh/helm/v3/internal/version.version to stamp"
  # As helm's Makefile: the default Kubernetes version of `helm template`/lint follows client-go.
  client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$helm_dir/go.mod")"
  k8s_minor="$(cut -d. -f2 <<<"$client_go")"
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  log "  compiling helm (client-go $client_go); progress = packages compiled"
  go_install_at helm "$tmp" "$ldflags" "helm.sh/helm/v3/cmd/helm@$v"
  local reported
  reported="$(HELM_CONFIG_HOME="$tmp/.config" HELM_CACHE_HOME="$tmp/.cache" HELM_DATA_HOME="$tmp/.data" \
    "$tmp/helm" version --template '{{.Version}}' 2>&1)"
  [[ "$reported" == "$v" ]] || die "helm reports '$reported', not $v"
  install_built "$tmp" "$HELM_DIR/bin" "$HELM_VERSION" helm
  log "built helm $v in $((SECONDS - started)) s"
}

# --- 5. pause ---------------------------------------------------------------------------------
build_pause() {
  cached "$PAUSE_DIR/bin/pause" "$KUBERNETES_VERSION" && return 0
  need gcc "build pause"
  local started=$SECONDS kube_dir src tag tmp="$PAUSE_DIR/bin.tmp"
  kube_dir="$(go_module_dir "k8s.io/kubernetes@v$KUBERNETES_VERSION")"
  src="$kube_dir/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "k8s.io/kubernetes@v$KUBERNETES_VERSION has no build/pause/linux/pause.c"
  tag="$(awk '$1 == "TAG" && $2 == "?=" {print $3; exit}' "$kube_dir/build/pause/Makefile")"
  [[ -n "$tag" ]] || die "no TAG in $kube_dir/build/pause/Makefile"
  log "pause $tag (kubernetes v$KUBERNETES_VERSION): gcc -static"
  rm -rf "$tmp" && mkdir -p "$tmp"
  gcc -static -O2 -Wall -Werror -DVERSION="v$tag" -o "$tmp/pause" "$src" \
    || die "step 'gcc pause.c' failed (above); the static libc comes from Debian libc6-dev"
  expect_version "$tmp/pause" "pause.c v$tag" -v
  echo "$tag" >"$tmp/pause.tag"   # the image tag kubelet expects: registry.k8s.io/pause:<tag>
  mkdir -p "$PAUSE_DIR/bin" && mv -f "$tmp/pause.tag" "$PAUSE_DIR/bin/pause.tag"
  install_built "$tmp" "$PAUSE_DIR/bin" "$KUBERNETES_VERSION" pause
  log "built pause $tag in $((SECONDS - started)) s"
}

# --- 6. Dapr control plane --------------------------------------------------------------------
build_dapr_control_plane() {
  local waited=0
  while pgrep -f 'scripts/build-dapr\.sh' >/dev/null; do  # never two build-dapr.sh at once
    ((waited % 60 == 0)) && log "waiting for a running scripts/build-dapr.sh to finish"
    sleep 10
    waited=$((waited + 10))
  done
  local dapr_bin
  dapr_bin="$(bash "$PHASE_DIR/scripts/build-dapr.sh")" || die "step 'scripts/build-dapr.sh' failed (above)"
  [[ "$dapr_bin" == "$DAPR_BIN_DIR" ]] || die "build-dapr.sh printed '$dapr_bin', expected $DAPR_BIN_DIR"

  local -a todo
  mapfile -t todo < <(missing_of "$DAPR_CP_DIR/bin" "$DAPR_VERSION" "${DAPR_CP_BINARIES[@]}")
  ((${#todo[@]})) || return 0
  local started=$SECONDS
  log "dapr $DAPR_VERSION control plane: ${todo[*]}"
  if [[ ! -f "$DAPR_SRC_DIR/go.mod" ]]; then  # build-dapr.sh reused ~/.dapr/bin: copy the source
    local module
    module="$(go_module_dir "github.com/dapr/dapr@v$DAPR_VERSION")"
    copy_module_source "$module" "$DAPR_SRC_DIR"
  fi
  local tmp="$DAPR_CP_DIR/bin.tmp" pkgs=() b
  for b in "${todo[@]}"; do pkgs+=("./cmd/$b"); done
  log "  compiling ${todo[*]} in $DAPR_SRC_DIR; progress = packages compiled"
  go_build_into dapr "$DAPR_SRC_DIR" "$tmp" \
    "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION" "${pkgs[@]}"
  for b in "${todo[@]}"; do [[ -x "$tmp/$b" ]] || die "step 'compile dapr' made no $b"; done
  install_built "$tmp" "$DAPR_CP_DIR/bin" "$DAPR_VERSION" "${todo[@]}"
  log "built dapr $DAPR_VERSION ${todo[*]} in $((SECONDS - started)) s"
}

exec 3>&1 1>&2  # stdout carries only the result directory
started=$SECONDS
build_kubernetes
build_etcd
build_coredns
build_helm
build_pause
build_dapr_control_plane

mkdir -p "$OUT_DIR"
for entry in "${ENTRIES[@]}"; do
  IFS='|' read -r name dir version <<<"$entry"
  cached "$dir/$name" "$version" || die "$dir/$name is not built as version $version"
  ln -sfn "$dir/$name" "$OUT_DIR/$name"
done
ln -sfn "$PAUSE_DIR/bin/pause.tag" "$OUT_DIR/pause.tag"
all_linked || die "the output directory $OUT_DIR is incomplete"
log "all cluster binaries ready in $((SECONDS - started)) s"
echo "$OUT_DIR" >&3
