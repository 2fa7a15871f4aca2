#!/usr/bin/env bash
# buildah with the project's private storage under the LearnFlow cache (vfs: works without
# overlay mounts inside a sandbox). Every container-build step goes through this wrapper.
set -euo pipefail
STORE="${LEARNFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learnflow}/buildah"
exec buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs "$@"
