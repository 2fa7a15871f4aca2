"""Exponential backoff after a failing dependency, shared by everything that publishes.

While the broker is down, each publish attempt costs its timeout and may still be delivered
later by daprd's producer, as a duplicate. So after a failure we stop trying for a while
(1 s, 2 s, 4 s, ... up to ``cap``, 15 s by default) and let the outbox relay catch up.
"""

from __future__ import annotations

import time


class Backoff:
    def __init__(self, first_seconds: float = 1.0, cap_seconds: float = 15.0) -> None:
        self._first = first_seconds
        self._cap = cap_seconds
        self._delay = 0.0
        self._until = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._until

    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    def failed(self) -> None:
        self._delay = min(self._cap, self._delay * 2 if self._delay else self._first)
        self._until = time.monotonic() + self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._until = 0.0
