"""What a scenario cost the stack per request: sidecar round trips, counted by daprd itself, and
CPU milliseconds of every process, read from /proc, both taken just before and just after the
measured requests (warm-up excluded).

Round trips are the app's calls to its own daprd (``dapr_http_server_request_count``, daprd's
health endpoint excluded) and daprd's calls into the app (``dapr_http_client_completed_count``:
actor turns, event deliveries). Work a scenario leaves behind (an event consumed later) lands
in whichever window it happens in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from learnflow_stack.bench.usage import cpu_seconds_by_process, stolen_cpu_seconds
from learnflow_stack.process import ManagedProcess

_APP_TO_SIDECAR = "dapr_http_server_request_count"
_SIDECAR_TO_APP = "dapr_http_client_completed_count"
_NOT_APP_WORK = 'path="/v1.0/healthz'  # daprd's own health checks, not the app's calls
# daprd counts a call once its handler has returned, which is after the caller already has the
# answer: a snapshot taken at once can miss the last call (a CI run counted 29 of 30 publishes).
_SETTLE_SECONDS = 0.1


def counter_sum(metrics_text: str, name: str) -> int:
    """The sum of every series of the counter ``name`` in a Prometheus text exposition."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") and _NOT_APP_WORK not in line:
            total += float(line.rsplit(" ", 1)[1])
    return round(total)


@dataclass(frozen=True)
class SidecarCalls:
    app_to_sidecar: int
    sidecar_to_app: int


@dataclass(frozen=True)
class CostSnapshot:
    cpu_seconds: Mapping[str, float]  # process name -> CPU s since it started
    sidecars: Mapping[str, SidecarCalls]  # app id -> calls counted by its daprd
    stolen_seconds: float  # the machine's steal time since it booted (``stolen_cpu_seconds``)


@dataclass(frozen=True)
class ScenarioCost:
    requests: int
    round_trips: Mapping[str, float]  # app id -> the app's calls to its daprd, per request
    deliveries: Mapping[str, float]  # app id -> daprd's calls into the app, per request
    cpu_ms: Mapping[str, float]  # process name -> CPU ms per request
    stolen_ms: float  # CPU ms per request the machine's hypervisor took from it meanwhile

    @property
    def total_round_trips(self) -> float:
        return sum(self.round_trips.values())


def cost_between(before: CostSnapshot, after: CostSnapshot, requests: int) -> ScenarioCost | None:
    if requests <= 0:
        return None
    return ScenarioCost(
        requests=requests,
        round_trips={
            app: (after.sidecars[app].app_to_sidecar - calls.app_to_sidecar) / requests
            for app, calls in before.sidecars.items()
        },
        deliveries={
            app: (after.sidecars[app].sidecar_to_app - calls.sidecar_to_app) / requests
            for app, calls in before.sidecars.items()
        },
        cpu_ms={
            name: (after.cpu_seconds[name] - seconds) * 1000 / requests
            for name, seconds in before.cpu_seconds.items()
            if name in after.cpu_seconds
        },
        stolen_ms=(after.stolen_seconds - before.stolen_seconds) * 1000 / requests,
    )


class CostMeter:
    """Takes CostSnapshots of a running stack: ``sidecar_metrics`` maps each app id to its
    daprd's metrics URL."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        processes: Sequence[ManagedProcess],
        sidecar_metrics: Mapping[str, str],
    ) -> None:
        self._client = client
        self._processes = processes
        self._sidecar_metrics = sidecar_metrics

    async def _calls(self, url: str) -> SidecarCalls:
        text = (await self._client.get(url)).text
        return SidecarCalls(counter_sum(text, _APP_TO_SIDECAR), counter_sum(text, _SIDECAR_TO_APP))

    async def snapshot(self) -> CostSnapshot:
        await asyncio.sleep(_SETTLE_SECONDS)
        apps = list(self._sidecar_metrics)
        calls = await asyncio.gather(*(self._calls(self._sidecar_metrics[app]) for app in apps))
        return CostSnapshot(
            cpu_seconds_by_process(self._processes),
            dict(zip(apps, calls, strict=True)),
            stolen_cpu_seconds(),
        )


async def idle_cost(meter: CostMeter, seconds: int) -> ScenarioCost | None:
    """What the stack spends per second with no request in flight: background passes (the
    outbox relay), daprd's health checks of the apps, Kafka's and the control plane's own work."""
    before = await meter.snapshot()
    await asyncio.sleep(seconds)
    return cost_between(before, await meter.snapshot(), seconds)
