"""The lesson store over daprd's state API (scripted here): a cache hit is one read, because
the cache pointer carries a copy of its lesson; pointers stored before the copy still work."""

import json
from typing import Any

import httpx
import pytest
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_store import LessonStore, cache_pointer_key, lesson_key
from learnflow_service_kit.outbox import Outbox
from learnflow_service_kit.sidecar_client import SidecarClient
from learnflow_service_kit.sidecar_http import HttpxSidecar

STATE = "/v1.0/state/statestore"


class FakeDaprd:
    """daprd's state API over a dict (no ETag checks: one writer here), counting calls."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.calls: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if request.method == "GET" and path.startswith(f"{STATE}/"):
            key = path.removeprefix(f"{STATE}/")
            if key not in self.state:
                return httpx.Response(204)
            return httpx.Response(200, json=self.state[key], headers={"etag": "1"})
        body = json.loads(request.content)
        if path == f"{STATE}/bulk":
            found = [
                {"key": k, "data": self.state[k], "etag": "1"} if k in self.state else {"key": k}
                for k in body["keys"]
            ]
            return httpx.Response(200, json=found)
        if path == f"{STATE}/transaction":
            for operation in body["operations"]:
                self.state[operation["request"]["key"]] = operation["request"]["value"]
            return httpx.Response(204)
        return httpx.Response(204)  # a publish


@pytest.fixture
def daprd() -> FakeDaprd:
    return FakeDaprd()


@pytest.fixture
def store(daprd: FakeDaprd) -> LessonStore:
    def connect() -> HttpxSidecar:
        return HttpxSidecar.scripted(daprd.handle)

    dapr = SidecarClient(connect, store="statestore", pubsub="pubsub")
    return LessonStore(dapr, Outbox(dapr), cache_ttl_seconds=60, idempotency_ttl_seconds=60)


def _reads(daprd: FakeDaprd) -> list[str]:
    return [call for call in daprd.calls if "/publish/" not in call]


async def test_a_saved_lesson_is_a_cache_hit_in_one_read(
    store: LessonStore, daprd: FakeDaprd, record: LessonRecord
) -> None:
    await store.save_new(record, "cache-key-1")
    daprd.calls.clear()

    assert await store.cached("cache-key-1") == record
    assert _reads(daprd) == [f"GET {STATE}/{cache_pointer_key('cache-key-1')}"]

    daprd.calls.clear()
    lesson, other = await store.cached_reading_also("cache-key-1", "llm-budget-ada")
    assert (lesson, other) == (record, None)
    assert _reads(daprd) == [f"POST {STATE}/bulk"]


async def test_a_pointer_stored_before_it_carried_the_lesson_still_finds_it(
    store: LessonStore, daprd: FakeDaprd, record: LessonRecord
) -> None:
    daprd.state[lesson_key(record.lesson_id)] = record.model_dump(mode="json")
    daprd.state[cache_pointer_key("old")] = {"lesson_id": record.lesson_id}

    assert await store.cached("old") == record
    assert await store.cached("never-stored") is None
    assert (await store.cached_reading_also("old", "other"))[0] == record
