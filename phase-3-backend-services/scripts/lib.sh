# Shared helpers for the install scripts (sourced, not executed).
set -euo pipefail
PHASE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
source "$PHASE_DIR/versions.env"
LEARNFLOW_CACHE="${LEARNFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learnflow}"
mkdir -p "$LEARNFLOW_CACHE"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "step '$2' needs '$1' on PATH, which is missing"; }
