"""The load driver's counting: every index once, failures apart, warm-up excluded, cap respected."""

from __future__ import annotations

import time

from learnflow_stack.bench.load import UnexpectedAnswer, drive, measure

# -- the load driver -------------------------------------------------------------------------


async def test_drive_calls_every_index_once_and_counts_failures_apart() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)
        if index % 3 == 0:
            raise UnexpectedAnswer(f"request {index} refused")

    run = await drive(call, range(10, 22), concurrency=4, deadline=time.perf_counter() + 60)

    assert sorted(called) == list(range(10, 22))
    assert len(run.latencies) == 8
    assert len(run.errors) == 4
    assert run.errors[0].startswith("UnexpectedAnswer: request")
    assert run.attempted == 12


async def test_drive_starts_nothing_after_the_deadline() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)

    run = await drive(call, range(100), concurrency=4, deadline=time.perf_counter() - 1)

    assert called == []
    assert run.attempted == 0


async def test_measure_leaves_warm_up_calls_out_of_the_figures() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)

    result = await measure(
        "probe", call, requests=20, concurrency=3, deadline=time.perf_counter() + 60
    )

    assert sorted(called) == list(range(26))  # 2 x concurrency warm-up calls first
    assert result.completed == 20
    assert result.errors == 0
    assert not result.cut_short
    assert result.requests_per_second > 0


async def test_measure_marks_a_scenario_the_cap_cut_short() -> None:
    async def call(_: int) -> None:
        return None

    result = await measure(
        "capped", call, requests=5, concurrency=2, deadline=time.perf_counter() - 1
    )

    assert result.cut_short
    assert result.latency is None
    assert result.requests_per_second == 0.0
