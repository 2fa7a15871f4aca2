"""daprd's state and publish API over a dict, for unit tests: ETags, first-write, atomic
transactions (upserts, and deletes with or without an ETag), bulk reads and publishes, behind
``HttpxSidecar.scripted``. Integration tests run the real daprd; this is for the logic above
the sidecar client.

Hooks a test sets to play a rival or a failure: ``rival_write`` (someone writes a key just
before the next transaction), ``lose_next_race`` (the next transaction fails as an ETag
mismatch), ``broker_up`` (publishes fail while False).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from learnflow_contracts.names import PUBSUB, STATESTORE

from learnflow_service_kit.sidecar_client import SidecarClient
from learnflow_service_kit.sidecar_http import HttpxSidecar

_STATE = f"/v1.0/state/{STATESTORE}"
_PUBLISH = f"/v1.0/publish/{PUBSUB}/"


class ScriptedDaprd:
    def __init__(self) -> None:
        self.state: dict[str, tuple[Any, int]] = {}  # key -> (value, etag)
        self._writes = 0
        self.calls: list[str] = []  # "METHOD path", in order
        self.reads = 0  # GETs and bulk GETs
        self.transactions = 0
        self.published: list[tuple[str, dict[str, Any], str]] = []  # topic, data, event id
        self.keys: list[str | None] = []  # each publish's partition key
        self.publish_attempts = 0
        self.broker_up = True
        self.lose_next_race = False
        self.rival_write: tuple[str, Any] | None = None

    def client(self) -> SidecarClient:
        """A sidecar client whose daprd is this one."""

        def connect() -> HttpxSidecar:
            return HttpxSidecar.scripted(self.handle)

        return SidecarClient(connect, store=STATESTORE, pubsub=PUBSUB)

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` as if written before the test began."""
        # ETags never repeat, not even for a key deleted and written again (as Postgres's).
        self._writes += 1
        self.state[key] = (value, self._writes)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path == f"{_STATE}/bulk":
            return self._bulk_get(json.loads(request.content)["keys"])
        if path == f"{_STATE}/transaction":
            return self._transact(json.loads(request.content)["operations"])
        if request.method == "GET" and path.startswith(f"{_STATE}/"):
            return self._get(path.removeprefix(f"{_STATE}/"))
        if path.startswith(_PUBLISH):
            return self._publish(path.removeprefix(_PUBLISH), request)
        return httpx.Response(404)

    def _get(self, key: str) -> httpx.Response:
        self.reads += 1
        if key not in self.state:
            return httpx.Response(204)
        value, etag = self.state[key]
        return httpx.Response(200, json=value, headers={"etag": str(etag)})

    def _bulk_get(self, keys: list[str]) -> httpx.Response:
        self.reads += 1
        return httpx.Response(
            200,
            json=[
                {"key": k, "data": self.state[k][0], "etag": str(self.state[k][1])}
                if k in self.state
                else {"key": k}
                for k in keys
            ],
        )

    def _transact(self, operations: list[dict[str, Any]]) -> httpx.Response:
        self.transactions += 1
        if self.rival_write:
            key, value = self.rival_write
            self.put(key, value)
            self.rival_write = None
        if self.lose_next_race:
            self.lose_next_race = False
            return httpx.Response(409, text="possible etag mismatch")
        for op in operations:
            req = op["request"]
            first_write = req.get("options", {}).get("concurrency") == "first-write"
            if first_write and "etag" not in req and req["key"] in self.state:
                return httpx.Response(500, text="failed: no item was updated")
            if "etag" in req and str(self.state.get(req["key"], (None, -1))[1]) != req["etag"]:
                return httpx.Response(409, text="possible etag mismatch")
        for op in operations:
            if op["operation"] == "delete":
                self.state.pop(op["request"]["key"], None)
            else:
                self.put(op["request"]["key"], op["request"]["value"])
        return httpx.Response(204)

    def _publish(self, topic: str, request: httpx.Request) -> httpx.Response:
        self.publish_attempts += 1
        if not self.broker_up:
            return httpx.Response(500, text="kafka down")
        event_id = request.url.params["metadata.cloudevent.id"]
        self.published.append((topic, json.loads(request.content), event_id))
        self.keys.append(request.url.params.get("metadata.partitionKey"))
        return httpx.Response(204)
