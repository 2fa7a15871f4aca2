"""Proves registration from placement's side: its own table lists every app with its actor types.

The deploy steps (lib/deploy-steps.sh, check_placement) read the table through the API
server's pod proxy (``/api/v1/namespaces/dapr-system/pods/dapr-placement-server-0:8080/proxy/
placement/state``; the chart serves it with ``dapr_placement.metadataEnabled=true``) and pipe
it into this script, run by a service container's Python (stdlib only):
``python -c "$(cat placement_table_check.py)" NAMESPACE APP=TYPE[,TYPE...]... <<<"$table"``.

Dapr 1.18's table is ``{"tables": {NAMESPACE: {"version": N, "hosts": [{"name": "IP:PORT",
"id": APP_ID, "entities": [ACTOR_TYPE, ...], "namespace": ..., "pod": ...}, ...]}}}``.
A host that serves no actor type is not listed at all. Exits 0 and prints the hosts when every
app is listed in NAMESPACE with every expected type; else exits 1 naming what is missing.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def hosted_actor_types(table: dict[str, Any], namespace: str) -> dict[str, set[str]]:
    """App id -> the actor types placement lists for it in ``namespace``."""
    namespace_table = (table.get("tables") or {}).get(namespace) or {}
    hosted: dict[str, set[str]] = {}
    for host in namespace_table.get("hosts") or []:
        if isinstance(host, dict) and host.get("id"):
            hosted.setdefault(str(host["id"]), set()).update(
                str(entity) for entity in host.get("entities") or []
            )
    return hosted


def table_problems(
    table: dict[str, Any], namespace: str, expected: dict[str, set[str]]
) -> list[str]:
    """What placement's table lacks; empty when every app is listed with every actor type."""
    hosted = hosted_actor_types(table, namespace)
    problems = []
    for app_id, actor_types in sorted(expected.items()):
        if app_id not in hosted:
            listed = sorted(hosted) or "no app"
            problems.append(f"{app_id} is not in placement's table for {namespace} (has {listed})")
            continue
        missing = actor_types - hosted[app_id]
        if missing:
            problems.append(
                f"{app_id} is listed without actor types {sorted(missing)} "
                f"(has {sorted(hosted[app_id])})"
            )
    return problems


def parse_expected(arguments: list[str]) -> dict[str, set[str]]:
    """``APP=TYPE[,TYPE...]`` arguments -> app id -> actor types."""
    expected = {}
    for argument in arguments:
        app_id, _, types = argument.partition("=")
        if not app_id or not types:
            raise ValueError(f"expected APP=TYPE[,TYPE...], got {argument!r}")
        expected[app_id] = set(types.split(","))
    return expected


def host_lines(table: dict[str, Any], namespace: str) -> list[str]:
    namespace_table = (table.get("tables") or {}).get(namespace) or {}
    return [
        f"  {host.get('id')} {host.get('name')} pod {host.get('pod')}: "
        f"{', '.join(host.get('entities') or [])}"
        for host in namespace_table.get("hosts") or []
        if isinstance(host, dict)
    ]


def main(argv: list[str], stdin: str) -> int:
    if len(argv) < 3:
        print("usage: placement_table_check.py NAMESPACE APP=TYPE[,TYPE...]...", file=sys.stderr)
        return 2
    namespace = argv[1]
    try:
        expected = parse_expected(argv[2:])
    except ValueError as wrong:
        print(wrong, file=sys.stderr)
        return 2
    try:
        table = json.loads(stdin)
    except ValueError as failure:
        print(f"placement's table is not JSON: {failure}: {stdin[:200]!r}", file=sys.stderr)
        return 1
    if not isinstance(table, dict):
        print(f"placement's table is not a JSON object: {stdin[:200]!r}", file=sys.stderr)
        return 1
    problems = table_problems(table, namespace, expected)
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    version = ((table.get("tables") or {}).get(namespace) or {}).get("version")
    print(f"placement's table for {namespace} (version {version}) lists every app:")
    print("\n".join(host_lines(table, namespace)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, sys.stdin.read()))
