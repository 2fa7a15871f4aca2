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

# apt_install PACKAGES...: Debian packages, without recommends; apt's output goes to stderr.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "step 'apt-get update' failed"
  apt-get install -y -qq --no-install-recommends "$@" >&2 || die "step 'apt-get install $*' failed"
}

# --- Maven ------------------------------------------------------------------------------------

# maven_resolve DIR ARTIFACT DEPENDENCIES STEP [LOG]: writes DIR/pom.xml (artifact ARTIFACT,
# the <dependency> elements DEPENDENCIES) and copies its runtime classpath into DIR/lib (anew).
# Maven's output goes to LOG (its tail to stderr on failure), else, quiet, to stderr. Callers
# keep their own completion marker.
maven_resolve() {
  local dir="$1" artifact="$2" dependencies="$3" step="$4" mvn_log="${5:-}"
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.learnflow</groupId>
  <artifactId>$artifact</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$dependencies
  </dependencies>
</project>
POM
  rm -rf "${dir:?}/lib"
  local copy=(dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/lib")
  if [[ -n "$mvn_log" ]]; then
    mvn -B -f "$dir/pom.xml" "${copy[@]}" >"$mvn_log" 2>&1 \
      || { tail -n 30 "$mvn_log" >&2
        die "step '$step' failed: Maven could not resolve the dependencies of $dir/pom.xml (log: $mvn_log)"; }
  else
    mvn -q -B -f "$dir/pom.xml" "${copy[@]}" >&2 \
      || die "step '$step' failed: Maven could not resolve the dependencies of $dir/pom.xml (output above)"
  fi
}

# --- Go modules -------------------------------------------------------------------------------

# go_module_dir MODULE@VERSION: downloads it (Go module proxy) and prints its directory.
go_module_dir() {
  local json dir
  json="$(go mod download -json "$1")" \
    || die "step 'download $1' failed: the Go module proxy refused it: $(grep -o '"Error": .*' <<<"$json")"
  dir="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")"
  [[ -d "$dir" ]] || die "step 'download $1' gave no source directory"
  echo "$dir"
}

# copy_module_source MODULE_DIR DEST: a writable copy of a module's source (a module with
# `replace` directives builds only as the main module), made once; an interrupted copy never
# counts as made.
copy_module_source() {
  [[ ! -f "$2/go.mod" ]] || return 0
  rm -rf "$2.tmp"
  cp -r "$1" "$2.tmp"
  chmod -R u+w "$2.tmp"
  mv "$2.tmp" "$2"
}

# with_download_progress LABEL LOG SECONDS COMMAND...: runs COMMAND (a `go ... -x`, its trace
# into LOG), logging every SECONDS how many files the module proxy has sent; on failure, the
# end of the trace and a stop naming LABEL.
with_download_progress() {
  local label="$1" logfile="$2" every="$3" pid
  shift 3
  "$@" >&2 2>"$logfile" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep "$every"
    kill -0 "$pid" 2>/dev/null && log "  $label: $(grep -c '^# get .*200 OK' "$logfile" || true) files fetched"
  done
  wait "$pid" || {
    { grep -v '^#\|^mkdir\|^cd\|^unzip\|^rm ' "$logfile" || true; } | tail -8 >&2
    die "step '$label' failed: the Go module proxy refused a module (above; full log $logfile)"
  }
}

# go_build_progress LABEL: reads `go build -v` output on stdin: logs every 200th package
# compiled (and 50th module downloaded), passes other lines (errors) on to stderr.
go_build_progress() {
  awk -v name="$1" -v tag="$(basename "$0" .sh)" '
    /^go: downloading / {d++; if (d % 50 == 0) printf "[%s]   %s: %d modules downloaded\n", tag, name, d > "/dev/stderr"; next}
    /^[a-z]/ && !/^go: / {n++; if (n % 200 == 0) printf "[%s]   %s: %d packages compiled\n", tag, name, n > "/dev/stderr"; next}
    {print > "/dev/stderr"}
    END {printf "[%s]   %s: %d packages compiled\n", tag, name, n > "/dev/stderr"}'
}
