#!/usr/bin/env bash
# Prints the content tag of one service image: 12 hex digits of a SHA-256 over everything the
# image is built from, as it is in the working tree now (uncommitted edits included):
#   - every file under the sources the service's Dockerfile COPYs from the build context
#     (the repository root): pyproject.toml, uv.lock, contracts, service-kit, the service,
#     install-service.sh, and for course-agent the prompts and recordings;
#   - the Dockerfile itself, the .dockerignore and the UV_VERSION build argument.
# Files come from `git ls-files` (tracked and untracked-but-not-ignored, present on disk),
# minus tests/ and __pycache__/ directories, which the .dockerignore keeps out of the context.
# Same content, same tag: a rebuild with an unchanged tag is a no-op, and a changed tag rolls
# the Deployment out by itself, so an old image is never silently redeployed.
# Usage: image-tag.sh SERVICE     (e.g. course-agent; IMAGE_TAG_LIST=1 prints what is hashed)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PHASE_DIR="$(cd "$HERE/../.." && pwd)"
service="${1:?usage: image-tag.sh SERVICE}"
dockerfile="$PHASE_DIR/$service/Dockerfile"
[[ -f "$dockerfile" ]] || { echo "image-tag.sh: no Dockerfile at $dockerfile" >&2; exit 2; }
REPO_ROOT="$(git -C "$PHASE_DIR" rev-parse --show-toplevel)"
# shellcheck source=SCRIPTDIR/../../versions.env
source "$PHASE_DIR/versions.env" # UV_VERSION

# COPY sources from the build context (COPY --from=<stage> copies from another stage): every
# argument but the last, flags dropped. Continuation lines are joined first.
copy_sources() {
  awk '/\\$/ {sub(/\\$/, ""); printf "%s ", $0; next} {print}' "$dockerfile" \
    | awk 'toupper($1) == "COPY" {
        from_stage = 0; n = 0
        for (i = 2; i <= NF; i++) {
          if ($i ~ /^--from=/) from_stage = 1
          else if ($i !~ /^--/) args[++n] = $i
        }
        if (!from_stage) for (i = 1; i < n; i++) print args[i]
      }'
}

sources=()
while IFS= read -r source_path; do sources+=("$source_path"); done < <(copy_sources)
((${#sources[@]})) || { echo "image-tag.sh: $dockerfile copies nothing from the context" >&2; exit 2; }
dockerfile_rel="$(git -C "$PHASE_DIR" rev-parse --show-prefix)$service/Dockerfile"

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
listing="$(mktemp)"
trap 'rm -f "$listing"' EXIT

{
  printf 'UV_VERSION=%s\n' "$UV_VERSION"
  git -C "$REPO_ROOT" ls-files --cached --others --exclude-standard -- \
    "${sources[@]}" "$dockerfile_rel" .dockerignore \
    | grep -Ev '(^|/)(tests|__pycache__)/' \
    | sort -u \
    | while IFS= read -r file; do
        # Tracked but deleted in the working tree: not in the build context either.
        if [[ -f "$REPO_ROOT/$file" ]]; then printf '%s\n' "$file"; fi
      done >"$listing"
  # One git process hashes every file's current content (the blob id, as `git add` would).
  paste -d ' ' <(cd "$REPO_ROOT" && git hash-object --stdin-paths <"$listing") "$listing"
} | if [[ -n "${IMAGE_TAG_LIST:-}" ]]; then cat; else sha256 | cut -c1-12; fi
