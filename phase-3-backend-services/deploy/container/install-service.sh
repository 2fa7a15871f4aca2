#!/bin/sh
# Installs one workspace service into a fresh virtual environment with exactly the
# dependencies uv.lock pins for it (hashes checked), the service and its workspace libraries
# as regular (non-editable) packages, and nothing of the dev-only stack.
# The Dockerfiles run it at build time and deploy/tests run it into a temporary venv, so the
# image and the test install the same way.
# Usage: install-service.sh SERVICE VENV_DIR   (run from the workspace root holding uv.lock)
set -eu
service="$1"
venv_dir="$2"
UV_PROJECT_ENVIRONMENT="$venv_dir" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
  uv sync --frozen --no-dev --no-editable --compile-bytecode --package "$service"
