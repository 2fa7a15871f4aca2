"""`learnflow-stack up`: the two services with their sidecars on the local stack, until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from confluent_kafka import KafkaException
from learnflow_contracts.names import LESSON_GENERATED_DEADLETTER_TOPIC, LESSON_GENERATED_TOPIC

from learnflow_stack import recorded_requests, services, soak
from learnflow_stack.bench import main as bench
from learnflow_stack.bench import tracing as bench_tracing
from learnflow_stack.dead_letters import ReplayIncomplete, replay_dead_letters
from learnflow_stack.demo import run_against_running_stack
from learnflow_stack.dev_auth import DevSigningKey
from learnflow_stack.paths import runs_root
from learnflow_stack.process import StartError
from learnflow_stack.stack import Stack


class _StopSignal:
    """Ctrl-C / SIGTERM, installed before the stack starts so none is missed: while the stack
    starts, a signal aborts the start (the stack stops what it started); once it runs, a
    signal ends ``wait``."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._running = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        print(f"\n[stack] {signal.Signals(signum).name}: stopping everything", file=sys.stderr)
        if not self._running:
            raise KeyboardInterrupt
        self._stopped.set()

    def wait(self) -> None:
        self._running = True
        # In short waits: the kernel may deliver the signal to one of the launcher's other
        # threads, and then a wait without a timeout is never interrupted for the handler to
        # run (the launcher kept running after Ctrl-C under load).
        while not self._stopped.wait(timeout=0.5):
            pass


def up(args: argparse.Namespace) -> int:
    llm_env, llm_note = services.llm_environment()
    tracing = (
        args.tracing if args.tracing is not None else os.environ.get("LEARNFLOW_TRACING") != "0"
    )
    stack = Stack(
        [services.user_progress(), services.course_agent(llm_env), *services.scaffolded()],
        tracing=tracing,
    )
    stop = _StopSignal()
    try:
        with stack:
            agent = stack.app("course-agent")
            progress = stack.app("user-progress")
            replaying = llm_env["COURSE_AGENT_LLM_PROVIDER"] == "replay"
            print(
                f"""
LearnFlow is running ({llm_note}).
  Course Agent   {agent.url}   (daprd {agent.sidecar.http_url})
  User Progress  {progress.url}   (daprd {progress.sidecar.http_url})
  Traces         {_traces_line(stack)}
  Logs           {stack.run_dir / "logs"}
  Ports          {stack.run_dir / "stack.json"}

Try:  TOKEN=$(make -s token LEARNER=ada)
      curl -s -X POST {agent.url}/generate-lesson -H "authorization: Bearer $TOKEN" \\
        -H 'content-type: application/json' \\
        -d '{{"learner_id": "ada", "topic": "Adding fractions", "level": "beginner"}}'
      curl -s -H "authorization: Bearer $TOKEN" '{progress.url}/status?learner_id=ada'
      make demo      (walks the whole loop against this stack)
{_replay_banner(agent.url) if replaying else ""}Ctrl-C stops everything.
""",
                flush=True,
            )
            stop.wait()
    except StartError as error:
        print(f"[stack] could not start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130  # stopped while starting; everything started was stopped on the way out
    return 0


def _traces_line(stack: Stack) -> str:
    if stack.jaeger is None:
        return "off (--no-tracing or LEARNFLOW_TRACING=0)"
    return (
        f"{stack.jaeger.ui_url}   (Jaeger; a lesson's trace: {stack.jaeger.ui_url}/api/traces/"
        "<its X-Trace-Id header>)"
    )


def _replay_banner(agent_url: str) -> str:
    """How many requests replay mode can answer, and a few that work, for `make run`."""
    requests = recorded_requests.load_recorded_requests()
    examples = "\n".join(f"        -d '{body}'" for body in recorded_requests.few(requests, "ada"))
    return f"""
Replay mode: {len(requests)} recorded requests have an answer \
({recorded_requests.recording_count()} recordings); any other request answers 503.
  `make recordings` lists them all (some need the learner's progress). A few that work, as
  the -d of the curl above ({agent_url}/generate-lesson):
{examples}
"""


def recordings(args: argparse.Namespace) -> int:
    requests = recorded_requests.load_recorded_requests()
    print(recorded_requests.listing(requests, recorded_requests.recording_count(), args.learner))
    return 0


def demo(_: argparse.Namespace) -> int:
    return run_against_running_stack()


def _running_stack(entry: str) -> str | None:
    """An entry of the running stack's stack.json (found, like `demo` does, through
    latest.json), or None when there is no running stack."""
    latest = runs_root() / "latest.json"
    try:
        manifest = json.loads(latest.read_text())
        run_manifest = json.loads((Path(manifest["run_dir"]) / "stack.json").read_text())
        value = run_manifest[entry]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, str) and value else None


def token(args: argparse.Namespace) -> int:
    key_path = _running_stack("signing_key")
    if key_path is None:
        print("no running stack found; start one with `make run`", file=sys.stderr)
        return 1
    roles = tuple(args.role or ())
    print(DevSigningKey.load(Path(key_path)).token(args.learner, roles, args.ttl))
    return 0


def replay(args: argparse.Namespace) -> int:
    brokers: str | None = args.brokers or _running_stack("kafka")
    if not brokers:
        print(
            f"no running stack found ({runs_root() / 'latest.json'}); start one with `make run` "
            "or pass --brokers HOST:PORT",
            file=sys.stderr,
        )
        return 1
    try:
        count = replay_dead_letters(brokers)
    except ReplayIncomplete as stopped:
        print(f"replay incomplete ({stopped.replayed} replayed): {stopped}", file=sys.stderr)
        return 1
    except ValueError as refused:
        print(f"replay refused: {refused}", file=sys.stderr)
        return 1
    except KafkaException as failure:
        print(f"could not replay through Kafka at {brokers}: {failure}", file=sys.stderr)
        return 1
    print(
        f"replayed {count} message(s) from {LESSON_GENERATED_DEADLETTER_TOPIC} "
        f"onto {LESSON_GENERATED_TOPIC}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="learnflow-stack")
    commands = parser.add_subparsers(dest="command", required=True)
    starting = commands.add_parser("up", help="start the local stack with both services")
    starting.add_argument(
        "--tracing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run Jaeger and trace every request (default: on, unless LEARNFLOW_TRACING=0)",
    )
    starting.set_defaults(run=up)
    commands.add_parser("demo", help="walk the whole loop on a running stack").set_defaults(
        run=demo
    )
    minting = commands.add_parser(
        "token", help="print a bearer token for a learner, signed by the running stack's dev key"
    )
    minting.add_argument("--learner", required=True, help="the learner id (the token's sub)")
    minting.add_argument(
        "--role", action="append", help="a role, e.g. teacher (acts for any learner); repeatable"
    )
    minting.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid")
    minting.set_defaults(run=token)
    listing = commands.add_parser(
        "recordings", help="list the requests the replay mode (no API key) has an answer for"
    )
    listing.add_argument("--learner", default="ada", help="the learner id shown in the bodies")
    listing.set_defaults(run=recordings)
    replaying = commands.add_parser(
        "replay-dead-letters",
        help="put the dead-lettered lesson-generated events not yet replayed back on the topic",
    )
    replaying.add_argument(
        "--brokers",
        metavar="HOST:PORT",
        help="a loopback Kafka bootstrap (default: the running stack's, from its stack.json)",
    )
    replaying.set_defaults(run=replay)
    measure = commands.add_parser(
        "bench", help="start a private stack with an LLM stub, measure, print figures"
    )
    bench.add_arguments(measure)
    measure.set_defaults(run=bench.run)
    tracing_cost = commands.add_parser(
        "bench-tracing", help="the same requests on a stack with tracing off, then on"
    )
    bench_tracing.add_arguments(tracing_cost)
    tracing_cost.set_defaults(run=bench_tracing.run)
    soaking = commands.add_parser(
        "soak", help="a private stack under a steady load for a bounded time, watching memory"
    )
    soak.add_arguments(soaking)
    soaking.set_defaults(run=soak.run)
    args = parser.parse_args()
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
