"""One turn at a time per actor id inside this process, whatever the sidecar does.

daprd serialises calls to an actor id, but when the *caller* of an actor gives up, daprd cancels
its call to the app and hands the turn to the next call while the app is still running the first
one. The Python SDK has no lock of its own, so two calls then interleave in one actor instance and
its cached state: a later save overwrites an earlier outbox append, and an applied update loses
its event (measured: 1-8 per burst of 200 updates). ``ActorTurns`` closes that gap: a turn holds
a per-id lock in the app, and it is shielded, so a cancelled request never stops a turn halfway
between its state save and its publish.

Work that waited too long is refused instead of done late: a caller passes ``not_after`` (epoch
seconds), and a turn that starts after it does nothing, so "the caller gave up" and "it was
applied" never both happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def deadline_after(seconds: float) -> float:
    """A ``not_after`` for work that must start within ``seconds`` from now (epoch seconds, so
    it means the same on whichever replica hosts the actor)."""
    return time.time() + seconds


def expired(not_after: float | None) -> bool:
    return not_after is not None and time.time() > not_after


class ActorTurns:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    async def run(self, actor_id: str, turn: Callable[[], Awaitable[T]]) -> T:
        return await asyncio.shield(asyncio.ensure_future(self._locked(actor_id, turn)))

    async def _locked(self, actor_id: str, turn: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(actor_id, asyncio.Lock())
        self._waiting[actor_id] = self._waiting.get(actor_id, 0) + 1
        try:
            async with lock:
                return await turn()
        finally:
            self._waiting[actor_id] -= 1
            if not self._waiting[actor_id]:  # nobody else holds or waits: forget the lock
                del self._waiting[actor_id], self._locks[actor_id]
