"""`learnflow-stack bench`: start a private stack with an LLM stub, measure, print figures.

Every scenario is bounded twice, by a request count (scaled by --requests) and by a wall-clock
cap (--max-seconds-per-scenario); whichever comes first ends it, and the table marks the
scenarios the cap cut short. Warm-up requests run first and are left out of every figure.
Each figure that carries a cost of its own has a baseline measured in the same run (the stub
called directly, one state read), so overheads are measured differences, not assumptions.
Everything listens and talks on 127.0.0.1 only.

Run: ``python -m learnflow_stack.bench --requests 0.1`` (a quick pass) or ``learnflow-stack bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from learnflow_contracts.names import COURSE_AGENT_APP_ID, USER_PROGRESS_APP_ID

from learnflow_stack import services
from learnflow_stack.bench.config import BenchConfig, add_arguments
from learnflow_stack.bench.load import log
from learnflow_stack.bench.report import BenchReport, render
from learnflow_stack.bench.scenarios import measure_all
from learnflow_stack.bench.usage import process_usage, stolen_cpu_seconds
from learnflow_stack.llm_stub import start_stub_process
from learnflow_stack.paths import runs_root
from learnflow_stack.process import StartError
from learnflow_stack.stack import Stack

__all__ = ["add_arguments", "main", "run"]


def course_agent_env(stub_url: str, config: BenchConfig) -> dict[str, str]:
    return {
        "COURSE_AGENT_LLM_PROVIDER": "openai",
        "COURSE_AGENT_LLM_BASE_URL": f"{stub_url}/v1",
        "COURSE_AGENT_LLM_API_KEY": "stub-key",  # the stub ignores it; not a secret
        "COURSE_AGENT_LLM_TIMEOUT_SECONDS": f"{5.0 + 2 * config.llm_delay_seconds:g}",
        # A retry would hide a failure inside a slower figure; errors must show as errors.
        "COURSE_AGENT_LLM_MAX_RETRIES": "0",
        # The busy learner's lessons are generated in one go: the hourly limit is not measured.
        "COURSE_AGENT_LLM_LESSONS_PER_LEARNER_PER_HOUR": "1000",
    }


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run(args: argparse.Namespace) -> int:
    config = BenchConfig.from_args(args)
    began = time.perf_counter()
    load_average = os.getloadavg()
    stolen_at_start = stolen_cpu_seconds()
    run_dir = runs_root() / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        stub_url, stub = start_stub_process(
            config.llm_delay_seconds, run_dir / "logs" / "llm-stub.log"
        )
    except StartError as error:
        log(f"could not start the LLM stub: {error}")
        return 1
    stack = Stack(
        [services.user_progress(), services.course_agent(course_agent_env(stub_url, config))],
        run_dir=run_dir,
    )
    try:
        with stack:
            stack_start_seconds = time.perf_counter() - began
            figures = asyncio.run(
                measure_all(
                    stack.app(COURSE_AGENT_APP_ID),
                    stack.app(USER_PROGRESS_APP_ID),
                    stub_url,
                    config,
                    # A teacher's token: the load generator acts for many learners.
                    stack.auth_headers(),
                    [*stack.processes(), stub],
                    stack.kafka_bootstrap,
                )
            )
            processes = process_usage([*stack.processes(), stub])
    except StartError as error:
        log(f"could not start: {error}")
        return 1
    finally:
        stub.stop()
    report = BenchReport(
        config=config,
        cpus=os.cpu_count() or 0,
        load_average_at_start=load_average,
        stack_start_seconds=stack_start_seconds,
        total_seconds=time.perf_counter() - began,
        client_cpu_seconds=_own_cpu_seconds(),
        stolen_cpu_seconds=stolen_cpu_seconds() - stolen_at_start,
        figures=figures,
        processes=processes,
    )
    print(render(report), flush=True)
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(report.as_json(), indent=2))
        log(f"results written to {config.json_path}")
    if report.failed_requests:
        log(f"{report.failed_requests} requests failed; see the first errors above")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learnflow-stack bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
