"""The bounded async load driver: run a call with N workers until the requests are done or a
deadline passes, warm up first, and turn what was timed into a ScenarioResult."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from learnflow_stack.bench.cost import CostMeter, ScenarioCost, cost_between
from learnflow_stack.bench.stats import LatencySummary, summarize, throughput


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class UnexpectedAnswer(RuntimeError):
    """A service answered, but not what the scenario expects: the request counts as an error."""


# What a failed request raises: it is counted as an error, never ends a scenario.
REQUEST_FAILURES = (httpx.HTTPError, UnexpectedAnswer)


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise UnexpectedAnswer(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (expected {status}): {response.text[:200]}"
        )
    return response


Call = Callable[[int], Awaitable[None]]


@dataclass
class LoadRun:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def attempted(self) -> int:
        return len(self.latencies) + len(self.errors)


async def drive(call: Call, indices: range, concurrency: int, deadline: float) -> LoadRun:
    """Run ``call(i)`` for each index with ``concurrency`` workers; none starts after
    ``deadline`` (a ``time.perf_counter`` value). Failed calls count as errors, not latencies."""
    run = LoadRun()
    remaining = iter(indices)  # shared: each worker takes the next index

    async def worker() -> None:
        for index in remaining:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                await call(index)
            except REQUEST_FAILURES as error:
                run.errors.append(describe(error))
            else:
                run.latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed_seconds = time.perf_counter() - began
    return run


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    concurrency: int
    planned: int
    errors: int
    latency: LatencySummary | None
    requests_per_second: float
    cut_short: bool  # the wall-clock cap ended it before ``planned`` requests
    first_error: str | None = None
    note: str | None = None  # something the scenario saw that is not a failed request
    cost: ScenarioCost | None = None  # per request, when the scenario was metered
    floor: str | None = None  # the name of the floor it is compared with, at its concurrency

    @property
    def completed(self) -> int:
        return self.latency.count if self.latency else 0

    @classmethod
    def set_up_failed(cls, name: str, concurrency: int, planned: int, error: str) -> ScenarioResult:
        return cls(
            name=name,
            concurrency=concurrency,
            planned=planned,
            errors=1,
            latency=None,
            requests_per_second=0.0,
            cut_short=False,
            first_error=f"set-up failed: {error}",
        )


async def measure(
    name: str,
    call: Call,
    *,
    requests: int,
    concurrency: int,
    deadline: float,
    meter: CostMeter | None = None,
    warmup: int | None = None,
) -> ScenarioResult:
    """Warm up with ``warmup`` calls (``2 * concurrency`` unless given; indices before the
    measured ones), then measure (and with a ``meter``, what the measured calls cost)."""
    warmup = 2 * concurrency if warmup is None else warmup
    await drive(call, range(warmup), concurrency, deadline)
    before = await meter.snapshot() if meter else None
    run = await drive(call, range(warmup, warmup + requests), concurrency, deadline)
    cost = cost_between(before, await meter.snapshot(), run.attempted) if meter and before else None
    log(f"{name}: {len(run.latencies)} ok, {len(run.errors)} errors")
    return ScenarioResult(
        name=name,
        concurrency=concurrency,
        planned=requests,
        errors=len(run.errors),
        latency=summarize(run.latencies),
        requests_per_second=throughput(len(run.latencies), run.elapsed_seconds),
        cut_short=run.attempted < requests,
        first_error=run.errors[0] if run.errors else None,
        cost=cost,
    )
