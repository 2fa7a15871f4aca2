#!/usr/bin/env bash
# Sets up a fresh machine for the local stack, idempotently; reruns take seconds.
#   uv + the locked Python environment, PostgreSQL, the Kafka broker jars, the Dapr binaries,
#   Jaeger all-in-one (the local trace backend).
source "$(dirname "$0")/lib.sh"
cd "$PHASE_DIR/.."

started=$SECONDS
uv="$(bash "$PHASE_DIR/scripts/ensure-uv.sh")"
log "1/5 python environment (uv sync --frozen)"
UV_PYTHON_DOWNLOADS=never "$uv" sync --frozen --quiet || die "step 'uv sync --frozen' failed"
log "2/5 postgresql: $(bash "$PHASE_DIR/scripts/install-postgres.sh")"
log "3/5 kafka $KAFKA_VERSION: $(bash "$PHASE_DIR/scripts/install-kafka.sh")"
log "4/5 dapr $DAPR_VERSION (first build takes 15-30 min): $(bash "$PHASE_DIR/scripts/build-dapr.sh")"
log "5/5 jaeger $JAEGER_VERSION (first build takes a few minutes): $(bash "$PHASE_DIR/scripts/build-jaeger.sh")"
log "ready in $((SECONDS - started)) s"
