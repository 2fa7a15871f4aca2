from __future__ import annotations

from learnflow_service_kit.backoff import Backoff


def test_backoff_doubles_up_to_its_cap_and_resets_on_success() -> None:
    backoff = Backoff(first_seconds=10.0, cap_seconds=25.0)
    assert backoff.ready()

    delays = []
    for _ in range(3):
        backoff.failed()
        delays.append(round(backoff.remaining()))
    assert delays == [10, 20, 25]
    assert not backoff.ready()

    backoff.succeeded()
    assert backoff.ready()
    assert backoff.remaining() == 0.0
