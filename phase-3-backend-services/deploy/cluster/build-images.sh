#!/usr/bin/env bash
# Builds every image the sandbox Kubernetes runs, here, with buildah (no registry is
# reachable), and keeps each as a docker-archive tar for `ctr images import`:
#   - PostgreSQL and Kafka stand-ins for postgres:16.11-bookworm and apache/kafka:4.1.1
#     (images/postgres, images/kafka: Debian bookworm from debootstrap, the same env/file
#     contract), named localhost/learnflow-{postgres,kafka}:<hash>;
#   - the Dapr images ghcr.io/dapr/<name>:$DAPR_VERSION and registry.k8s.io/pause:3.10 (and
#     :<pause.tag> when the binaries directory names another tag) from the binaries of
#     deploy/cluster/build-binaries.sh (images/dapr, images/pause);
#   - the two services from their Dockerfiles on the local Python base
#     (deploy/container/make-local-base.sh), tagged docker.io/learnflow/<service>:<hash of
#     what the Dockerfile copies, working tree included>.
# Every archive is keyed on a hash of its recipe (the files under images/ and the functions
# here that build it) and inputs: an unchanged image is never rebuilt, a changed one never
# replaced silently by an old one.
#
#   build-images.sh [BIN_DIR]      BIN_DIR (or $LEARNFLOW_CLUSTER_BIN_DIR; default: what
#                                  build-binaries.sh prints) holds daprd operator injector
#                                  sentry placement scheduler pause [pause.tag]
#
# Prints the path of images.json on stdout: a list of {"name", "ref" (as containerd names the
# imported image), "archive" (the tar), "replaces" (the image the manifests name, for a
# kustomize `images:` override; null when ref is that image)}. Progress goes to stderr.
source "$(dirname "$0")/../../scripts/lib.sh"
# A failing step inside $(...) fails the substitution too.
shopt -s inherit_errexit
export LEARNFLOW_CACHE
CLUSTER_DIR="$PHASE_DIR/deploy/cluster"
RECIPES="$CLUSTER_DIR/images"
CONTAINER_DIR="$PHASE_DIR/deploy/container"
REPO_ROOT="$(cd "$PHASE_DIR/.." && pwd)"
OUT="$LEARNFLOW_CACHE/cluster/images"
WORK="$LEARNFLOW_CACHE/cluster/images-work"
BUILDAH=(bash "$CONTAINER_DIR/buildah.sh")
HASH=(python3 "$RECIPES/input-hash.py")
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
DAPR_BINARIES=(daprd operator injector sentry placement scheduler)
# The sandbox image containerd's configuration names (node-config.sh).
PAUSE_TAG=3.10
# shellcheck source=SCRIPTDIR/../lib/services.sh
source "$PHASE_DIR/deploy/lib/services.sh"
mapfile -t SERVICES < <(learnflow_services "$PHASE_DIR")

# input_key ARGS...: the first 12 hex digits of `input-hash.py ARGS...`.
input_key() {
  local digest
  digest="$("${HASH[@]}" "$@")" || die "step 'hash image inputs' failed (input-hash.py $*)"
  echo "${digest:0:12}"
}

# The one image the manifest FILE names for REPOSITORY (e.g. postgres, apache/kafka): the
# name a kustomize `images:` override replaces.
manifest_image() {
  local file="$PHASE_DIR/deploy/base/$1" repository="$2" found
  found="$(grep -hoE "image:[[:space:]]*[\"']?$repository(:[^\"' ]+)?([\"' ]|\$)" "$file" \
    | sed -E "s/^image:[[:space:]]*[\"']?//; s/[\"' ]\$//" | sort -u || true)"
  [[ -n "$found" && "$(wc -l <<<"$found")" -eq 1 ]] \
    || die "expected one image '$repository' in $file, found: ${found:-none}"
  echo "$found"
}

# --- Debian base (debootstrap) ------------------------------------------------------------

# debootstrap mounts /proc (and may bind /dev and /sys) inside its target; an interrupted run
# can leave them mounted. Never remove a tree through a mount.
remove_tree() {
  local dir mnt
  [[ -e "$1" ]] || return 0
  dir="$(realpath "$1")"
  while read -r mnt; do umount --lazy "$mnt" 2>/dev/null || true; done < <(
    awk -v d="$dir/" 'index($2 "/", d) == 1 {print $2}' /proc/self/mounts | sort -r)
  if awk -v d="$dir/" 'index($2 "/", d) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    die "file systems are still mounted under $dir; not removing it"
  fi
  rm -rf --one-file-system "$dir"
}

# Debian bookworm minbase + ca-certificates, slim like debian:bookworm-slim (no docs, man
# pages or translations), updated from bookworm-security, apt configured for the image
# recipes (no recommends). Its tag is the hash of this function: a changed recipe is a new base.
make_debian_base() {
  local image="$1" dir="$WORK/debian-base" rootfs ctr
  need debootstrap "build the Debian base image"
  remove_tree "$dir"
  mkdir -p "$dir"
  rootfs="$dir/rootfs"
  log "debian base: debootstrap $DEBIAN_SUITE minbase from $DEBIAN_MIRROR (once; a few minutes)"
  debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" \
    "$DEBIAN_MIRROR" >"$WORK/logs/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/logs/debootstrap.log" >&2; die "step 'debootstrap' failed (log: $WORK/logs/debootstrap.log)"; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/90learnflow" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90learnflow-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
    "$rootfs"/var/log/apt/* "$rootfs"/var/cache/debconf/*-old
  tar -C "$rootfs" --one-file-system -cf "$dir/rootfs.tar" .
  remove_tree "$rootfs"
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$ctr" "$dir/rootfs.tar" / >/dev/null
  rm -f "$dir/rootfs.tar"
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd bash "$ctr"
  log "debian base: apt-get upgrade from $DEBIAN_SUITE-updates and -security"
  "${BUILDAH[@]}" run --isolation chroot "$ctr" -- sh -c 'set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get upgrade -y -qq
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/*.log /var/cache/debconf/*-old' \
    >"$WORK/logs/debian-base-upgrade.log" 2>&1 \
    || { tail -n 30 "$WORK/logs/debian-base-upgrade.log" >&2; "${BUILDAH[@]}" rm "$ctr" >/dev/null; die "step 'debian base upgrade' failed"; }
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
  remove_tree "$dir"
}
DEBIAN_BASE_KEY="$({ declare -f make_debian_base; echo "$DEBIAN_SUITE"; } | sha256sum | cut -c1-12)"
DEBIAN_BASE="localhost/learnflow-debian-base:$DEBIAN_SUITE-$DEBIAN_BASE_KEY"

# Prints the base image name, building it the first time it is needed.
debian_base() {
  if ! "${BUILDAH[@]}" inspect --type image "$DEBIAN_BASE" >/dev/null 2>&1; then
    local started=$SECONDS
    make_debian_base "$DEBIAN_BASE"
    log "debian base: $DEBIAN_BASE ready ($((SECONDS - started)) s)"
  fi
  echo "$DEBIAN_BASE"
}

# --- building and archiving ----------------------------------------------------------------

# archive_path NAME KEY: where the archive of that recipe+inputs hash lives.
archive_path() { echo "$OUT/$1-$2.tar"; }

# record NAME REF ARCHIVE REPLACES: one entry of images.json.
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$MANIFEST"; }

# build_archive NAME REF ARCHIVE BUD_ARGS...: buildah bud (chroot isolation, layer cache),
# then the docker-archive named REF; older archives and tags of NAME are dropped.
build_archive() {
  local name="$1" ref="$2" archive="$3" started=$SECONDS build_log old previous
  shift 3
  build_log="$WORK/logs/$name.log"
  log "$name: building $ref (log: $build_log)"
  # A fixed tag (ghcr.io/dapr/*, pause) moves to the new image: the old one goes afterwards.
  previous="$("${BUILDAH[@]}" images --quiet --no-trunc "$ref" 2>/dev/null || true)"
  if ! "${BUILDAH[@]}" bud --isolation chroot --layers --force-rm --format docker --tag "$ref" "$@" \
    >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "step 'build $name' failed (log: $build_log)"
  fi
  rm -f "$archive.tmp"
  "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >>"$build_log" 2>&1 \
    || { tail -n 20 "$build_log" >&2; die "step 'archive $name' failed (log: $build_log)"; }
  mv -f "$archive.tmp" "$archive"
  for old in "$OUT/$name"-*.tar; do
    [[ "$old" == "$archive" || ! -e "$old" ]] || rm -f "$old"
  done
  # Older tags of the same repository (hash-tagged images) leave the build storage.
  while read -r old; do
    [[ "$old" == "${ref%:*}:"* && "$old" != "$ref" ]] || continue
    "${BUILDAH[@]}" rmi "$old" >/dev/null 2>&1 || true
  done < <("${BUILDAH[@]}" images --noheading --format '{{.Name}}:{{.Tag}}' 2>/dev/null || true)
  for old in $previous; do
    if [[ "$old" != "$("${BUILDAH[@]}" images --quiet --no-trunc "$ref" 2>/dev/null || true)" ]]; then
      "${BUILDAH[@]}" rmi "$old" >/dev/null 2>&1 || true
    fi
  done
  BUILT=$((BUILT + 1))
  log "$name: built in $((SECONDS - started)) s, $(du -h "$archive" | cut -f1)"
}

up_to_date() { log "$1: up to date ($2)"; }

# --- binaries --------------------------------------------------------------------------

# BIN_DIR: the argument, LEARNFLOW_CLUSTER_BIN_DIR, else what build-binaries.sh prints.
find_binaries() {
  local binary missing=() daprd_version
  BIN_DIR="${1:-${LEARNFLOW_CLUSTER_BIN_DIR:-}}"
  if [[ -z "$BIN_DIR" ]]; then
    [[ -f "$CLUSTER_DIR/build-binaries.sh" ]] \
      || die "no binaries directory: pass it as the argument or LEARNFLOW_CLUSTER_BIN_DIR"
    BIN_DIR="$(bash "$CLUSTER_DIR/build-binaries.sh")" || die "step 'build-binaries.sh' failed"
  fi
  for binary in "${DAPR_BINARIES[@]}" pause; do
    [[ -x "$BIN_DIR/$binary" ]] || missing+=("$binary")
  done
  ((${#missing[@]} == 0)) || die "binaries directory $BIN_DIR lacks: ${missing[*]}"
  daprd_version="$("$BIN_DIR/daprd" --version 2>/dev/null | tail -n 1 || true)"
  [[ "$daprd_version" == "$DAPR_VERSION" ]] \
    || log "WARNING: $BIN_DIR/daprd reports version '$daprd_version', the images are tagged $DAPR_VERSION"
}

# --- PostgreSQL stand-in --------------------------------------------------------------------

build_postgres() {
  local replaces key ref archive base
  replaces="$(manifest_image infra/postgres.yaml postgres)"
  key="$(input_key paths "$RECIPES/postgres" "text:$DEBIAN_BASE" "text:$(declare -f build_archive)")"
  ref="localhost/learnflow-postgres:$key"
  archive="$(archive_path postgres "$key")"
  if [[ -s "$archive" ]]; then
    up_to_date postgres "$ref"
  else
    base="$(debian_base)"
    build_archive postgres "$ref" "$archive" --build-arg "BASE_IMAGE=$base" \
      --file "$RECIPES/postgres/Containerfile" "$RECIPES/postgres"
  fi
  record postgres "$ref" "$archive" "$replaces"
}

# --- Kafka stand-in -------------------------------------------------------------------------

# The kafka-tools jar (TopicCommand, ConsoleConsumer & co.), which the broker classpath of
# install-kafka.sh lacks, with its own dependencies minus Kafka Connect (REST server, not used
# by any tool the image ships). Resolved from Maven Central once.
kafka_tools_lib() {
  local dir="$LEARNFLOW_CACHE/cluster/kafka-tools/$KAFKA_VERSION"
  if [[ ! -f "$dir/.complete" ]]; then
    need mvn "resolve kafka-tools"
    log "kafka: resolving org.apache.kafka:kafka-tools:$KAFKA_VERSION (once)"
    maven_resolve "$dir" kafka-tools-classpath "\
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>jackson-jakarta-rs-json-provider</artifactId></exclusion>
      </exclusions>
    </dependency>" "resolve kafka-tools" "$WORK/logs/kafka-tools-mvn.log"
    touch "$dir/.complete"
  fi
  echo "$dir/lib"
}

# The image's /opt/kafka/libs: the broker classpath plus the jars only the tools need. A jar
# the tools want in another version than the broker's would be a split classpath: refused.
kafka_libs() {
  local broker_lib="$1" tools_lib="$2" libs="$3" jar artifact
  rm -rf "$libs"
  mkdir -p "$libs"
  cp -l "$broker_lib"/*.jar "$libs/" 2>/dev/null || cp "$broker_lib"/*.jar "$libs/"
  for jar in "$tools_lib"/*.jar; do
    [[ -e "$libs/$(basename "$jar")" ]] && continue
    artifact="$(basename "$jar" | sed -E 's/-[0-9][^-]*(-[^-]+)?\.jar$//')"
    if compgen -G "$libs/$artifact-[0-9]*.jar" >/dev/null; then
      die "kafka-tools wants $(basename "$jar") but the broker classpath has $(cd "$libs" && ls "$artifact"-[0-9]*.jar)"
    fi
    cp -l "$jar" "$libs/" 2>/dev/null || cp "$jar" "$libs/"
  done
}

build_kafka() {
  local replaces broker_lib tools_lib key ref archive context base
  replaces="$(manifest_image infra/kafka.yaml apache/kafka)"
  broker_lib="$(bash "$PHASE_DIR/scripts/install-kafka.sh")" || die "step 'install-kafka.sh' failed"
  [[ -d "$broker_lib" ]] || die "install-kafka.sh printed '$broker_lib', not a directory"
  tools_lib="$(kafka_tools_lib)"
  key="$(input_key paths "$RECIPES/kafka" "$broker_lib" "$tools_lib" "text:$DEBIAN_BASE" \
    "text:$(declare -f build_archive build_kafka kafka_libs)")"
  ref="localhost/learnflow-kafka:$key"
  archive="$(archive_path kafka "$key")"
  if [[ -s "$archive" ]]; then
    up_to_date kafka "$ref"
  else
    context="$WORK/context/kafka"
    rm -rf "$context"
    mkdir -p "$context"
    cp -R "$RECIPES/kafka/." "$context/"
    kafka_libs "$broker_lib" "$tools_lib" "$context/libs"
    base="$(debian_base)"
    build_archive kafka "$ref" "$archive" --build-arg "BASE_IMAGE=$base" \
      --file "$context/Containerfile" "$context"
    rm -rf "$context"
  fi
  record kafka "$ref" "$archive" "$replaces"
}

# --- Dapr and pause -----------------------------------------------------------------------

build_dapr() {
  local name="$1" key ref archive context base
  key="$(input_key paths "$RECIPES/dapr" "$BIN_DIR/$name" "text:$DEBIAN_BASE" \
    "text:$(declare -f build_archive build_dapr)")"
  ref="ghcr.io/dapr/$name:$DAPR_VERSION"
  archive="$(archive_path "dapr-$name" "$key")"
  if [[ -s "$archive" ]]; then
    up_to_date "dapr-$name" "$ref"
  else
    context="$WORK/context/dapr-$name"
    rm -rf "$context"
    # The distroless layout, ownership included (ADD keeps a tar's owners, COPY does not).
    mkdir -p "$context/rootfs/etc" "$context/rootfs/tmp" "$context/rootfs/home/nonroot"
    cp "$RECIPES/dapr/passwd" "$RECIPES/dapr/group" "$RECIPES/dapr/nsswitch.conf" "$context/rootfs/etc/"
    chmod 0755 "$context/rootfs" "$context/rootfs/etc" "$context/rootfs/home"
    chmod 0644 "$context/rootfs/etc/"*
    chmod 1777 "$context/rootfs/tmp"
    chmod 0700 "$context/rootfs/home/nonroot"
    tar -C "$context/rootfs" --numeric-owner --owner=0 --group=0 --exclude=./home/nonroot \
      -cf "$context/rootfs.tar" .
    tar -C "$context/rootfs" --numeric-owner --owner=65532 --group=65532 -rf "$context/rootfs.tar" \
      ./home/nonroot
    rm -rf "$context/rootfs"
    cp -L "$BIN_DIR/$name" "$context/$name"
    base="$(debian_base)"
    build_archive "dapr-$name" "$ref" "$archive" --build-arg "BASE_IMAGE=$base" \
      --build-arg "NAME=$name" --file "$RECIPES/dapr/Containerfile" "$context"
    rm -rf "$context"
  fi
  record "dapr-$name" "$ref" "$archive" ""
}

# build_pause TAG: registry.k8s.io/pause:TAG from the pause binary.
build_pause() {
  local tag="$1" name="pause-$1" ref="registry.k8s.io/pause:$1" key archive context
  key="$(input_key paths "$RECIPES/pause" "$BIN_DIR/pause" "text:$ref" "text:$(declare -f build_archive)")"
  archive="$(archive_path "$name" "$key")"
  if [[ -s "$archive" ]]; then
    up_to_date "$name" "$ref"
  else
    context="$WORK/context/$name"
    rm -rf "$context"
    mkdir -p "$context"
    cp -L "$BIN_DIR/pause" "$context/pause"
    build_archive "$name" "$ref" "$archive" --file "$RECIPES/pause/Containerfile" "$context"
    rm -rf "$context"
  fi
  record "$name" "$ref" "$archive" ""
}

# --- the services -------------------------------------------------------------------------

# Tag = the service's content tag (container/image-tag.sh, the one Minikube uses too) plus
# this machine's base image recipe.
build_service() {
  local service="$1" dockerfile replaces copied tag ref archive python_base
  dockerfile="$PHASE_DIR/$service/Dockerfile"
  replaces="$(manifest_image "apps/$service.yaml" "learnflow/$service")"
  copied="$(bash "$CONTAINER_DIR/image-tag.sh" "$service")" || die "step 'image-tag.sh $service' failed"
  tag="$(input_key paths "text:$copied" "$CONTAINER_DIR/make-local-base.sh" \
    "text:$(declare -f build_archive)")"
  ref="docker.io/learnflow/$service:$tag"
  archive="$(archive_path "$service" "$tag")"
  if [[ -s "$archive" ]]; then
    up_to_date "$service" "$ref"
  else
    python_base="$(bash "$CONTAINER_DIR/make-local-base.sh")" || die "step 'make-local-base.sh' failed"
    build_archive "$service" "$ref" "$archive" --build-arg "PYTHON_IMAGE=$python_base" \
      --build-arg "UV_VERSION=$UV_VERSION" --file "$dockerfile" "$REPO_ROOT"
  fi
  record "$service" "$ref" "$archive" "$replaces"
}

# --- main -----------------------------------------------------------------------------------

write_images_json() {
  python3 - "$MANIFEST" "$OUT/images.json" <<'PY'
import json, os, sys
entries = []
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        name, ref, archive, replaces = line.rstrip("\n").split("\t")
        entries.append({"name": name, "ref": ref, "archive": archive, "replaces": replaces or None})
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w", encoding="utf-8") as handle:
    json.dump(entries, handle, indent=2)
    handle.write("\n")
os.replace(tmp, sys.argv[2])
PY
}

main() {
  local started=$SECONDS binary service
  need python3 "hash the image inputs"
  mkdir -p "$OUT" "$WORK/logs"
  exec 9>"$OUT/.lock"
  if ! flock --nonblock 9; then
    log "another build-images.sh is running; waiting for it"
    flock 9
  fi
  find_binaries "$@"
  MANIFEST="$WORK/images.tsv"
  : >"$MANIFEST"
  BUILT=0
  log "images into $OUT (binaries: $BIN_DIR)"
  build_pause "$PAUSE_TAG"
  # build-binaries.sh names the tag of the pause it built (Kubernetes' build/pause/Makefile);
  # when it is another one, that image too, so either sandbox_image setting finds its image.
  if [[ -s "$BIN_DIR/pause.tag" && "$(<"$BIN_DIR/pause.tag")" != "$PAUSE_TAG" ]]; then
    [[ "$(<"$BIN_DIR/pause.tag")" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] \
      || die "$BIN_DIR/pause.tag holds '$(<"$BIN_DIR/pause.tag")', not an image tag"
    build_pause "$(<"$BIN_DIR/pause.tag")"
  fi
  for binary in "${DAPR_BINARIES[@]}"; do build_dapr "$binary"; done
  build_postgres
  build_kafka
  for service in "${SERVICES[@]}"; do build_service "$service"; done
  write_images_json
  log "$(wc -l <"$MANIFEST") images ready, $BUILT built, in $((SECONDS - started)) s: $OUT/images.json"
  echo "$OUT/images.json"
}

# One line: bash has read all of it before main runs, so editing this file meanwhile is safe.
main "$@"; exit
