#!/usr/bin/env bash
# Sets up a fresh machine for the local stack, idempotently; reruns take seconds.
#   uv + the locked Python environment, PostgreSQL, the Kafka broker jars, the Dapr binaries.
source "$(dirname "$0")/lib.sh"
cd "$PHASE_DIR/.."

started=$SECONDS
uv="$(bash "$PHASE_DIR/scripts/ensure-uv.sh")"
log "1/4 python environment (uv sync --frozen)"
UV_PYTHON_DOWNLOADS=never "$uv" sync --frozen --quiet || die "step 'uv sync --frozen' failed"
log "2/4 postgresql: $(bash "$PHASE_DIR/scripts/install-postgres.sh")"
log "3/4 kafka $KAFKA_VERSION: $(bash "$PHASE_DIR/scripts/install-kafka.sh")"
log "4/4 dapr $DAPR_VERSION (first build takes 15-30 min): $(bash "$PHASE_DIR/scripts/build-dapr.sh")"
log "ready in $((SECONDS - started)) s"
