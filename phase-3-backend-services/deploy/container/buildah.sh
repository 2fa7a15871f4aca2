#!/usr/bin/env bash
# buildah with the project's private storage under the LearnFlow cache. Every container-build
# step goes through this wrapper. The storage driver is chosen once per storage directory:
# overlay where this kernel/sandbox allows its mounts (fast), else vfs (works everywhere, but
# copies every layer).
set -euo pipefail
STORE="${LEARNFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learnflow}/buildah"
DRIVER_FILE="$STORE/storage-driver"

storage() { buildah --root "$STORE/storage-$1" --runroot "$STORE/run-$1" --storage-driver "$1" "${@:2}"; }

if [[ ! -s "$DRIVER_FILE" ]]; then
  mkdir -p "$STORE"
  driver=vfs
  if probe="$(storage overlay from scratch 2>/dev/null)"; then
    storage overlay rm "$probe" >/dev/null
    driver=overlay
  fi
  echo "$driver" >"$DRIVER_FILE"
fi
storage "$(cat "$DRIVER_FILE")" "$@"
