#!/usr/bin/env bash
# Makes a local stand-in for the Dockerfiles' python:3.11-slim base, for machines where no
# container registry is reachable: Debian bookworm (debootstrap minbase from the Debian
# mirror) with Debian's Python 3.11, laid out like the official image (python, pip on
# /usr/local/bin, no EXTERNALLY-MANAGED marker) and trusting this machine's CA bundle (PyPI
# may be reached through a TLS-inspecting proxy). Built once and kept in the buildah
# storage of buildah.sh; prints the image name on stdout.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# Bump the recipe number whenever this recipe changes, so a stale cached base is not reused.
IMAGE="localhost/learnflow-python-base:3.11-bookworm-r1"
BUILDAH=("$HERE/buildah.sh")
WORK="${LEARNFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learnflow}/buildah/base-work"

log() { printf '[make-local-base] %s\n' "$*" >&2; }

if "${BUILDAH[@]}" inspect --type image "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
rootfs="$WORK/rootfs"
log "debootstrap bookworm (minbase + python3.11) into $rootfs"
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 20 "$WORK/debootstrap.log" >&2; log "debootstrap failed"; exit 3; }

for name in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/$name"; done
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar -C "$rootfs" -cf "$WORK/rootfs.tar" .

ctr="$("${BUILDAH[@]}" from scratch)"
"${BUILDAH[@]}" add "$ctr" "$WORK/rootfs.tar" / >/dev/null
"${BUILDAH[@]}" config \
  --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  --cmd python3 "$ctr"
"${BUILDAH[@]}" commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
log "base image $IMAGE ready"
echo "$IMAGE"
