"""Events go out in the background; what went out is remembered; a failing broker is left alone
for a while."""

from __future__ import annotations

from typing import Any

from learnflow_service_kit.backoff import Backoff
from user_progress.event_sender import EventSender


class Broker:
    def __init__(self) -> None:
        self.up = True
        self.attempts = 0
        self.published: list[str] = []

    async def publish(
        self, topic: str, data: dict[str, Any], event_id: str, partition_key: str | None = None
    ) -> None:
        self.attempts += 1
        if not self.up:
            raise RuntimeError("broker down")
        self.published.append(event_id)


def _entry(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "data": {"n": event_id}}


async def test_a_sent_event_is_remembered_and_an_unsent_one_is_not() -> None:
    broker = Broker()
    sender = EventSender(broker, Backoff())

    sender.send_soon("progress-updated", _entry("e1"))
    await sender.drain()
    broker.up = False
    assert await sender.send("progress-updated", _entry("e2")) is False

    assert broker.published == ["e1"]
    assert sender.sent("e1")
    assert not sender.sent("e2")


async def test_after_a_failure_the_broker_is_not_tried_until_the_backoff_ends() -> None:
    broker = Broker()
    broker.up = False
    sender = EventSender(broker, Backoff(first_seconds=60))

    await sender.send("progress-updated", _entry("e1"))
    broker.up = True
    sender.send_soon("progress-updated", _entry("e2"))
    await sender.drain()

    assert broker.attempts == 1
    assert not sender.ready()
    assert not sender.sent("e2")
