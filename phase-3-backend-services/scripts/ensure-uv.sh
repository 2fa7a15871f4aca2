#!/usr/bin/env bash
# Installs the pinned uv into its own venv under the cache (once) and prints its path.
source "$(dirname "$0")/lib.sh"

UV_HOME="$LEARNFLOW_CACHE/uv-$UV_VERSION"
if [[ ! -x "$UV_HOME/bin/uv" ]]; then
  need python3 "install uv"
  log "installing uv $UV_VERSION from PyPI (first run only)"
  python3 -m venv "$UV_HOME" >&2 || die "step 'create venv for uv' failed"
  "$UV_HOME/bin/pip" install -q "uv==$UV_VERSION" >&2 || die "step 'pip install uv==$UV_VERSION' failed"
fi
echo "$UV_HOME/bin/uv"
