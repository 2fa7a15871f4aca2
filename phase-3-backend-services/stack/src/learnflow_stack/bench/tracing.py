"""`learnflow-stack bench-tracing`: what tracing costs, tracing off against tracing on.

The same requests, one at a time, on two private stacks started one after the other: tracing
off (the default: no Jaeger, sampling 0, nothing installed in the apps), then on (Jaeger, every
trace sampled, every app and daprd exporting to it). Per scenario: p50/p95 latency and the CPU
the two apps and their sidecars spent on it; the difference is the cost of tracing. Warm-up
requests run first and are left out. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from learnflow_contracts.names import COURSE_AGENT_APP_ID, USER_PROGRESS_APP_ID

from learnflow_stack import services
from learnflow_stack.bench.stats import summarize
from learnflow_stack.bench.usage import cpu_seconds_by_process
from learnflow_stack.llm_stub import start_stub_process
from learnflow_stack.paths import runs_root
from learnflow_stack.stack import Stack

WARM_UP = 10


@dataclass(frozen=True)
class Figure:
    scenario: str
    tracing: bool
    requests: int
    p50_ms: float
    p95_ms: float
    app_cpu_ms_per_request: float  # both apps and both daprds, per request


def _log(message: str) -> None:
    print(f"[bench-tracing] {message}", file=sys.stderr, flush=True)


def _measure_stack(tracing: bool, requests: int, stub_url: str) -> list[Figure]:
    run_dir = runs_root() / f"bench-tracing-{'on' if tracing else 'off'}-{os.getpid()}"
    env = {
        "COURSE_AGENT_LLM_PROVIDER": "openai",
        "COURSE_AGENT_LLM_BASE_URL": f"{stub_url}/v1",
        "COURSE_AGENT_LLM_API_KEY": "stub-key",  # the stub ignores it; not a secret
        "COURSE_AGENT_LLM_MAX_RETRIES": "0",
    }
    stack = Stack(
        [services.user_progress(), services.course_agent(env)], run_dir=run_dir, tracing=tracing
    )
    with stack, httpx.Client(headers=stack.auth_headers(), timeout=30) as client:
        agent = stack.app(COURSE_AGENT_APP_ID).url
        progress = stack.app(USER_PROGRESS_APP_ID).url
        learner = f"bench-{uuid.uuid4().hex[:8]}"
        measured = [
            p
            for p in stack.processes()
            if p.name.startswith((COURSE_AGENT_APP_ID, USER_PROGRESS_APP_ID, "daprd"))
        ]

        def new_lesson(n: int) -> httpx.Response:  # a cache miss: LLM, transaction, publish
            body = {"learner_id": f"{learner}-{n % 20}", "topic": f"Topic {uuid.uuid4().hex}"}
            return client.post(f"{agent}/generate-lesson", json=body)

        def same_lesson(_: int) -> httpx.Response:  # a cache hit
            body = {"learner_id": learner, "topic": "Adding fractions"}
            return client.post(f"{agent}/generate-lesson", json=body)

        def status(_: int) -> httpx.Response:  # an actor read in User Progress
            return client.get(f"{progress}/status", params={"learner_id": learner})

        scenarios: list[tuple[str, Callable[[int], httpx.Response]]] = [
            ("POST /generate-lesson (cache miss)", new_lesson),
            ("POST /generate-lesson (cache hit)", same_lesson),
            ("GET /status", status),
        ]
        figures = []
        for name, call in scenarios:
            for n in range(WARM_UP):
                call(n).raise_for_status()
            cpu_before = sum(cpu_seconds_by_process(measured).values())
            latencies = []
            for n in range(requests):
                started = time.perf_counter()
                call(n).raise_for_status()
                latencies.append(time.perf_counter() - started)
            cpu = sum(cpu_seconds_by_process(measured).values()) - cpu_before
            summary = summarize(latencies)
            assert summary is not None
            figures.append(
                Figure(
                    name,
                    tracing,
                    requests,
                    summary.p50 * 1000,
                    summary.p95 * 1000,
                    cpu * 1000 / requests,
                )
            )
            _log(f"tracing {'on ' if tracing else 'off'} {name}: p50 {summary.p50 * 1000:.1f} ms")
        return figures


def render(figures: list[Figure]) -> str:
    lines = [
        "Tracing off vs on (sequential requests; CPU = both apps + both daprds, per request)",
        f"{'scenario':<36} {'p50 off':>8} {'p50 on':>8} {'p95 off':>8} {'p95 on':>8}"
        f" {'CPU off':>8} {'CPU on':>8}",
    ]
    off = {f.scenario: f for f in figures if not f.tracing}
    on = {f.scenario: f for f in figures if f.tracing}
    for scenario, a in off.items():
        b = on[scenario]
        lines.append(
            f"{scenario:<36} {a.p50_ms:>6.1f}ms {b.p50_ms:>6.1f}ms {a.p95_ms:>6.1f}ms"
            f" {b.p95_ms:>6.1f}ms {a.app_cpu_ms_per_request:>6.1f}ms"
            f" {b.app_cpu_ms_per_request:>6.1f}ms"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    stub_url, stub = start_stub_process(0.0, runs_root() / f"bench-tracing-stub-{os.getpid()}.log")
    try:
        figures = [
            *_measure_stack(False, args.requests, stub_url),
            *_measure_stack(True, args.requests, stub_url),
        ]
    finally:
        stub.stop()
    print(render(figures), flush=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=200, help="requests per scenario")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learnflow-stack bench-tracing", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
