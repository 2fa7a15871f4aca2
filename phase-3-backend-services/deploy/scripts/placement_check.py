"""Proves that the Dapr sidecar next to this process registered its actor types with placement.

The deploy steps (lib/deploy-steps.sh) pipe this file into each service container (stdlib
only, the container has no curl):
``kubectl exec -i POD -c APP -- python - ACTOR_TYPES < placement_check.py``.
This is the sidecar's side; placement_table_check.py checks placement's own table.
It asks the sidecar for ``/v1.0/metadata`` (with the container's ``DAPR_API_TOKEN``) and passes
only when the actor runtime reports ``placement: connected``, the actor host is ready and every
expected actor type is registered.
Placement disseminates its table a moment after a sidecar connects, so it retries for a while.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

CONNECTED = "placement: connected"
WAIT_SECONDS = 60.0


def registered_actor_types(metadata: dict[str, Any]) -> set[str]:
    runtime = metadata.get("actorRuntime") or {}
    listed = [*(runtime.get("activeActors") or []), *(metadata.get("actors") or [])]
    return {str(actor["type"]) for actor in listed if isinstance(actor, dict) and "type" in actor}


def registration_problems(metadata: dict[str, Any], expected_types: set[str]) -> list[str]:
    """What keeps this sidecar from counting as registered; empty when it is."""
    runtime = metadata.get("actorRuntime") or {}
    problems = []
    if runtime.get("placement") != CONNECTED:
        problems.append(
            f"actorRuntime.placement is {runtime.get('placement')!r}, not {CONNECTED!r}"
        )
    if runtime.get("hostReady") is not True:
        problems.append("actorRuntime.hostReady is not true")
    registered = registered_actor_types(metadata)
    missing = expected_types - registered
    if missing:
        problems.append(f"actor types {sorted(missing)} not registered (has {sorted(registered)})")
    return problems


def sidecar_metadata(port: str) -> dict[str, Any]:
    # daprd answers its API only with its token (DAPR_API_TOKEN, which the app container has).
    token = os.environ.get("DAPR_API_TOKEN")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1.0/metadata",
        headers={"dapr-api-token": token} if token else {},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - loopback http
        decoded: dict[str, Any] = json.load(reply)
        return decoded


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1]:
        print("usage: placement_check.py ACTOR_TYPE[,ACTOR_TYPE...]", file=sys.stderr)
        return 2
    expected = set(argv[1].split(","))
    port = os.environ.get("DAPR_HTTP_PORT", "3500")
    deadline = time.monotonic() + float(os.environ.get("PLACEMENT_WAIT_SECONDS", WAIT_SECONDS))
    while True:
        try:
            metadata = sidecar_metadata(port)
            problems = registration_problems(metadata, expected)
        except (OSError, ValueError) as failure:
            metadata, problems = {}, [f"sidecar metadata unavailable: {failure}"]
        if not problems:
            print(f"{metadata.get('id')}: {CONNECTED}, host ready, actor types {sorted(expected)}")
            return 0
        if time.monotonic() >= deadline:
            print("; ".join(problems), file=sys.stderr)
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
