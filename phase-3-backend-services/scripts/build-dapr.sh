#!/usr/bin/env bash
# Builds daprd (allcomponents), placement and scheduler from the pinned github.com/dapr/dapr
# release, once; later runs reuse the cached binaries. Prints the bin directory on stdout.
source "$(dirname "$0")/lib.sh"

BIN_DIR="$LEARNFLOW_CACHE/dapr/v$DAPR_VERSION/bin"
BINARIES=(daprd placement scheduler)

reports_pinned_version() {  # $1 = binary path
  [[ -x "$1" ]] || return 1
  # Only daprd has --version; placement and scheduler carry a stamp written when cached.
  if [[ "$(basename "$1")" == daprd ]]; then
    "$1" --version 2>/dev/null | grep -qx "$DAPR_VERSION"
  else
    [[ "$(cat "$1.version" 2>/dev/null)" == "$DAPR_VERSION" ]]
  fi
}

all_cached() {
  local b
  for b in "${BINARIES[@]}"; do reports_pinned_version "$BIN_DIR/$b" || return 1; done
}

if all_cached; then echo "$BIN_DIR"; exit 0; fi

mkdir -p "$BIN_DIR"
# A `dapr init` installation (~/.dapr/bin) is reused when its daprd is the pinned release.
if reports_pinned_version "$HOME/.dapr/bin/daprd"; then
  for b in "${BINARIES[@]}"; do
    [[ -x "$HOME/.dapr/bin/$b" ]] || continue
    log "reusing ~/.dapr/bin/$b (v$DAPR_VERSION)"
    cp "$HOME/.dapr/bin/$b" "$BIN_DIR/$b"
    echo "$DAPR_VERSION" >"$BIN_DIR/$b.version"
  done
  if all_cached; then echo "$BIN_DIR"; exit 0; fi
fi

need go "build dapr"
export CGO_ENABLED=0
log "step 1/3: downloading github.com/dapr/dapr@v$DAPR_VERSION from the Go module proxy"
module_dir="$(go_module_dir "github.com/dapr/dapr@v$DAPR_VERSION")"

# dapr's go.mod has replace directives, so `go install pkg@version` refuses it; build in a copy.
SRC_DIR="$LEARNFLOW_CACHE/dapr/v$DAPR_VERSION/src"
copy_module_source "$module_dir" "$SRC_DIR"
cd "$SRC_DIR"

log "step 2/3: downloading dapr's dependencies (first run: ~2000 modules, a few minutes)"
with_download_progress "download dependencies" "$LEARNFLOW_CACHE/dapr/v$DAPR_VERSION/download.log" 10 \
  go mod download -x

build_one() {  # $1 = command name, $2 = build tags
  local started=$SECONDS
  log "step 3/3: compiling $1 (tags: ${2:-none}); progress = packages compiled"
  go build -v -trimpath ${2:+-tags "$2"} \
      -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION" \
      -o "$BIN_DIR/$1.tmp" "./cmd/$1" 2>&1 \
    | go_build_progress "$1"
  [[ ${PIPESTATUS[0]} -eq 0 && -x "$BIN_DIR/$1.tmp" ]] || die "step 'compile $1' failed (compiler output above)"
  mv "$BIN_DIR/$1.tmp" "$BIN_DIR/$1"
  echo "$DAPR_VERSION" >"$BIN_DIR/$1.version"
  log "  $1 built in $((SECONDS - started)) s"
}

for b in "${BINARIES[@]}"; do
  reports_pinned_version "$BIN_DIR/$b" && continue
  if [[ $b == daprd ]]; then build_one daprd allcomponents; else build_one "$b" ""; fi
done
all_cached || die "built binaries do not report version $DAPR_VERSION"
echo "$BIN_DIR"
