"""`learnflow-stack soak`: a private stack under a steady load for a bounded time, watching every
process's memory.

Each tick sends three requests: a cached lesson (POST /generate-lesson), a quiz update and a
GET /status, over a fixed population of learners (a real population is bounded too; actors of
learners that stop coming are deactivated by daprd after its idle timeout). Resident memory
(VmRSS) of every process is sampled every ``--sample-seconds``. The run fails on any failed
request, or when a process's memory grew, from the end of the first minute (warmed up) to the
end, by more than ``--max-growth-percent`` and more than 20 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from httpx_aiohttp import AiohttpTransport

from learnflow_stack import services
from learnflow_stack.bench.config import BenchConfig
from learnflow_stack.bench.load import REQUEST_FAILURES, describe, expect, log
from learnflow_stack.bench.main import course_agent_env
from learnflow_stack.bench.requests import generate_body, quiz_update
from learnflow_stack.bench.stats import summarize
from learnflow_stack.bench.usage import status_kib
from learnflow_stack.llm_stub import start_stub_process
from learnflow_stack.paths import runs_root
from learnflow_stack.process import ManagedProcess, StartError
from learnflow_stack.stack import AppInstance, Stack

LEARNERS = 200
_GROWTH_FLOOR_MIB = 20.0
_WARM_SECONDS = 60.0


def rss_mib(pid: int) -> float | None:
    try:
        kib = status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    except OSError:
        return None
    return None if kib is None else kib / 1024


@dataclass
class Soak:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # (s, MiB)

    def grown(self, max_percent: float) -> dict[str, tuple[float, float]]:
        """Processes whose memory grew too much after warming up: name -> (from, to) MiB."""
        warm = [s for t, s in self.samples if t >= _WARM_SECONDS] or [self.samples[-1][1]]
        first, last = warm[0], self.samples[-1][1]
        return {
            name: (first[name], last[name])
            for name in first
            if name in last
            and last[name] - first[name] > _GROWTH_FLOOR_MIB
            and last[name] > first[name] * (1 + max_percent / 100)
        }


async def _drive(
    client: httpx.AsyncClient,
    agent: AppInstance,
    progress: AppInstance,
    processes: list[ManagedProcess],
    args: argparse.Namespace,
) -> Soak:
    soak = Soak()
    in_flight = asyncio.Semaphore(64)  # a stalled stack shows as errors, not as piled-up tasks
    tasks: set[asyncio.Task[None]] = set()

    async def timed(request: httpx.Request, status: int) -> None:
        async with in_flight:
            started = time.perf_counter()
            try:
                expect(await client.send(request), status)
            except REQUEST_FAILURES as error:
                soak.errors.append(describe(error))
                return
            soak.latencies.append(time.perf_counter() - started)

    def launch(request: httpx.Request, status: int) -> None:
        task = asyncio.ensure_future(timed(request, status))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # The lesson every tick asks for, generated once before the clock starts.
    expect(
        await client.post(
            f"{agent.url}/generate-lesson", json=generate_body("soak", "Cached topic")
        ),
        201,
    )
    began = time.perf_counter()
    next_sample = 0.0
    tick = 0
    while (elapsed := time.perf_counter() - began) < args.seconds:
        if elapsed >= next_sample:
            soak.samples.append(
                (elapsed, {p.name: m for p in processes if (m := rss_mib(p.pid)) is not None})
            )
            log(f"soak {elapsed:5.0f} s: {len(soak.latencies)} ok, {len(soak.errors)} errors")
            next_sample += args.sample_seconds
        learner = f"soak-{tick % LEARNERS}"
        launch(
            client.build_request(
                "POST", f"{agent.url}/generate-lesson", json=generate_body("soak", "Cached topic")
            ),
            200,
        )
        update = quiz_update(learner, "lesson-soak", f"attempt-{tick}", score=tick % 101)
        launch(client.build_request("POST", f"{progress.url}/update-progress", json=update), 200)
        launch(
            client.build_request("GET", f"{progress.url}/status", params={"learner_id": learner}),
            200,
        )
        tick += 1
        await asyncio.sleep(max(0.0, began + tick / args.rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    soak.samples.append(
        (time.perf_counter() - began, {p.name: m for p in processes if (m := rss_mib(p.pid))})
    )
    return soak


def _report(soak: Soak, args: argparse.Namespace) -> int:
    latency = summarize(soak.latencies)
    print(
        f"Soak: {args.seconds:g} s at {args.rate:g} ticks/s (3 requests each), {LEARNERS} learners"
    )
    if latency:
        print(
            f"  {latency.count} ok, {len(soak.errors)} failed; p50 {latency.p50 * 1000:.1f} ms, "
            f"p99 {latency.p99 * 1000:.1f} ms, max {latency.maximum * 1000:.0f} ms"
        )
    names = list(soak.samples[0][1])
    print(f"  {'s':>6}" + "".join(f"{name[:20]:>22}" for name in names) + "   (VmRSS MiB)")
    for at, sample in soak.samples:
        print(f"  {at:6.0f}" + "".join(f"{sample.get(name, 0.0):22.1f}" for name in names))
    grown = soak.grown(args.max_growth_percent)
    for name, (first, last) in grown.items():
        print(f"  GREW: {name} {first:.1f} -> {last:.1f} MiB after warming up")
    if soak.errors:
        print(f"  first error: {soak.errors[0]}")
    return 1 if soak.errors or grown else 0


def run(args: argparse.Namespace) -> int:
    run_dir = runs_root() / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        stub_url, stub = start_stub_process(0.2, run_dir / "logs" / "llm-stub.log")
    except StartError as error:
        log(f"could not start the LLM stub: {error}")
        return 1
    config = BenchConfig(0.2, 1.0, 4, 8, 20.0, None)
    stack = Stack(
        [services.user_progress(), services.course_agent(course_agent_env(stub_url, config))],
        run_dir=run_dir,
    )

    async def measure() -> Soak:
        async with httpx.AsyncClient(
            timeout=10.0,
            headers=stack.auth_headers(),
            trust_env=False,
            transport=AiohttpTransport(limits=httpx.Limits(max_connections=128), trust_env=False),
        ) as client:
            return await _drive(
                client,
                stack.app("course-agent"),
                stack.app("user-progress"),
                [*stack.processes(), stub],
                args,
            )

    try:
        with stack:
            soak = asyncio.run(measure())
    except StartError as error:
        log(f"could not start: {error}")
        return 1
    finally:
        stub.stop()
    return _report(soak, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=300.0, help="how long (default 300)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="ticks per second, 3 requests each (default 20)"
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=30.0, help="memory sampling interval (default 30)"
    )
    parser.add_argument(
        "--max-growth-percent",
        type=float,
        default=10.0,
        help="memory growth after the first minute that fails the run (default 10)",
    )


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="learnflow-stack soak", description=__doc__)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
