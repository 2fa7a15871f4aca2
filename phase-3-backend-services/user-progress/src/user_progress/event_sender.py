"""Sends ``progress-updated`` events off the actor's turn, and remembers which went out.

An update's turn commits the progress and the pending event together, then hands the event
here: the publish runs in the background, so neither the caller nor the learner's next update
waits on the broker (a frozen Kafka once cost each turn the publish timeout). What was sent is
remembered in this process, so the learner's next turn or the outbox reminder drops it from the
stored outbox instead of publishing it again. If the actor has moved to another replica, the new
host does not know, publishes it again, and the consumer dedupes on the event id.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Protocol

import structlog
from learnflow_service_kit.backoff import Backoff

log = structlog.get_logger()

_REMEMBERED = 10_000  # event ids kept; older ones just risk one duplicate


class EventPublisher(Protocol):
    async def publish(
        self, topic: str, data: dict[str, Any], event_id: str, partition_key: str | None = None
    ) -> None: ...


class EventSender:
    def __init__(self, publisher: EventPublisher, backoff: Backoff) -> None:
        self._publisher = publisher
        self._backoff = backoff
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._sending: set[asyncio.Task[bool]] = set()

    def sent(self, event_id: str) -> bool:
        return event_id in self._sent

    def send_soon(self, topic: str, entry: dict[str, Any]) -> None:
        """Publish in the background, unless the broker failed lately (the reminder will)."""
        if not self._backoff.ready():
            return
        task = asyncio.ensure_future(self.send(topic, entry))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def send(self, topic: str, entry: dict[str, Any]) -> bool:
        try:
            await self._publisher.publish(
                topic, entry["data"], entry["event_id"], entry.get("partition_key")
            )
        except Exception as error:  # broker or sidecar down: the reminder retries
            self._backoff.failed()
            log.warning("progress-updated publish deferred", error=str(error))
            return False
        self._backoff.succeeded()
        self._sent[entry["event_id"]] = None
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)
        return True

    def ready(self) -> bool:
        return self._backoff.ready()

    async def drain(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
