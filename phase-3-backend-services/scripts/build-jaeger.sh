#!/usr/bin/env bash
# Builds Jaeger all-in-one (OTLP receiver, in-memory storage, query API/UI) from the pinned
# github.com/jaegertracing/jaeger release, once; later runs reuse the cached binary.
# Prints the binary's path on stdout.
source "$(dirname "$0")/lib.sh"

ROOT="$LEARNFLOW_CACHE/jaeger/v$JAEGER_VERSION"
BIN="$ROOT/bin/jaeger-all-in-one"

cached() {
  [[ -x "$BIN" ]] && "$BIN" version 2>/dev/null | grep -q "\"gitVersion\":\"v$JAEGER_VERSION\""
}

if cached; then echo "$BIN"; exit 0; fi

need go "build jaeger"
export CGO_ENABLED=0
mkdir -p "$ROOT/bin"
log "step 1/3: downloading github.com/jaegertracing/jaeger@v$JAEGER_VERSION from the Go module proxy"
module_json="$(go mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_VERSION")" \
  || die "step 'download jaeger module' failed: the Go module proxy refused github.com/jaegertracing/jaeger@v$JAEGER_VERSION"
module_dir="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$module_json")"
[[ -d "$module_dir" ]] || die "step 'download jaeger module' gave no source directory"

# jaeger's go.mod has a replace directive, so `go install pkg@version` refuses it; build in a copy.
SRC_DIR="$ROOT/src"
if [[ ! -f "$SRC_DIR/go.mod" ]]; then
  rm -rf "$SRC_DIR.tmp"
  cp -r "$module_dir" "$SRC_DIR.tmp"
  chmod -R u+w "$SRC_DIR.tmp"
  mv "$SRC_DIR.tmp" "$SRC_DIR"
fi
cd "$SRC_DIR"

log "step 2/3: downloading jaeger's dependencies (first run: several hundred modules)"
download_log="$ROOT/download.log"
go mod download -x 2>"$download_log" &
download_pid=$!
while kill -0 "$download_pid" 2>/dev/null; do
  sleep 10
  log "  $(grep -c '^# get .*200 OK' "$download_log" || true) files fetched"
done
wait "$download_pid" || {
  grep -v '^#\|^mkdir\|^cd\|^unzip' "$download_log" | tail -5 >&2
  die "step 'download dependencies' failed: the Go module proxy refused a module jaeger v$JAEGER_VERSION needs (above)"
}

started=$SECONDS
log "step 3/3: compiling cmd/all-in-one; progress = packages compiled"
# No UI assets (they come from the jaeger-ui npm build): the query service serves a placeholder
# page at /, while its HTTP API (/api/traces, /api/services) is complete.
go build -v -trimpath \
    -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
    -o "$BIN.tmp" ./cmd/all-in-one 2>&1 \
  | awk '/^[a-z]/ {n++; if (n % 200 == 0) printf "[build-jaeger]   all-in-one: %d packages\n", n > "/dev/stderr"} !/^[a-z]/ {print > "/dev/stderr"}'
[[ ${PIPESTATUS[0]} -eq 0 && -x "$BIN.tmp" ]] || die "step 'compile jaeger all-in-one' failed (compiler output above)"
mv "$BIN.tmp" "$BIN"
log "  jaeger all-in-one built in $((SECONDS - started)) s"
cached || die "built jaeger does not report version v$JAEGER_VERSION"
echo "$BIN"
