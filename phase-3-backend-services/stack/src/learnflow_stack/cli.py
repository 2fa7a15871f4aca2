"""`learnflow-stack up`: the two services with their sidecars on the local stack, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from learnflow_stack import bench, services
from learnflow_stack.demo import run_against_running_stack
from learnflow_stack.process import StartError
from learnflow_stack.stack import Stack


def _wait_for_signal() -> None:
    stopped = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        print(f"\n[stack] {signal.Signals(signum).name}: stopping everything", file=sys.stderr)
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stopped.wait()


def up(_: argparse.Namespace) -> int:
    llm_env, llm_note = services.llm_environment()
    stack = Stack([services.user_progress(), services.course_agent(llm_env)])
    try:
        with stack:
            agent = stack.app("course-agent")
            progress = stack.app("user-progress")
            print(
                f"""
LearnFlow is running ({llm_note}).
  Course Agent   {agent.url}   (daprd {agent.sidecar.http_url})
  User Progress  {progress.url}   (daprd {progress.sidecar.http_url})
  Logs           {stack.run_dir / "logs"}
  Ports          {stack.run_dir / "stack.json"}

Try:  curl -s -X POST {agent.url}/generate-lesson -H 'content-type: application/json' \\
        -d '{{"learner_id": "ada", "topic": "Adding fractions", "level": "beginner"}}'
      curl -s '{progress.url}/status?learner_id=ada'
      make demo      (walks the whole loop against this stack)
Ctrl-C stops everything.
""",
                flush=True,
            )
            _wait_for_signal()
    except StartError as error:
        print(f"[stack] could not start: {error}", file=sys.stderr)
        return 1
    return 0


def demo(_: argparse.Namespace) -> int:
    return run_against_running_stack()


def main() -> int:
    parser = argparse.ArgumentParser(prog="learnflow-stack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the local stack with both services").set_defaults(run=up)
    commands.add_parser("demo", help="walk the whole loop on a running stack").set_defaults(
        run=demo
    )
    measure = commands.add_parser(
        "bench", help="start a private stack with an LLM stub, measure, print figures"
    )
    bench.add_arguments(measure)
    measure.set_defaults(run=bench.run)
    args = parser.parse_args()
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
