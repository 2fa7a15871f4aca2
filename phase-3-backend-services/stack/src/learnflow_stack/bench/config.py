"""The benchmark's options: the command-line arguments and the BenchConfig they become."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from learnflow_stack.bench.stats import scaled_count


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--llm-delay",
        type=_non_negative_float,
        default=0.2,
        help="seconds the LLM stub waits before each answer (default 0.2)",
    )
    parser.add_argument(
        "--requests",
        type=_positive_float,
        default=1.0,
        help="scale factor for every scenario's request count (default 1.0; 0.1 = quick pass)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="requests in flight for the Course Agent scenarios and baselines (default 4)",
    )
    parser.add_argument(
        "--progress-concurrency",
        type=_positive_int,
        default=8,
        help="requests in flight for the User Progress update scenarios (default 8)",
    )
    parser.add_argument(
        "--max-seconds-per-scenario",
        type=_positive_float,
        default=20.0,
        help="wall-clock cap of each scenario, warm-up and set-up included (default 20)",
    )
    parser.add_argument(
        "--scored-history",
        type=_non_negative_int,
        default=0,
        metavar="ATTEMPTS",
        help="give each lesson of the learner with a long history this many scored updates "
        "(POST /update-progress) before it is measured (default 0: lessons only; 3 take about a "
        "minute)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON"
    )


@dataclass(frozen=True)
class BenchConfig:
    llm_delay_seconds: float
    scale: float
    concurrency: int
    progress_concurrency: int
    max_seconds_per_scenario: float
    json_path: Path | None
    # Scored updates per lesson of the long-history learner, made before it is measured.
    scored_history_attempts: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchConfig:
        return cls(
            llm_delay_seconds=args.llm_delay,
            scale=args.requests,
            concurrency=args.concurrency,
            progress_concurrency=args.progress_concurrency,
            max_seconds_per_scenario=args.max_seconds_per_scenario,
            json_path=args.json,
            scored_history_attempts=args.scored_history,
        )

    def count(self, base: int) -> int:
        return scaled_count(base, self.scale)

    @property
    def request_timeout_seconds(self) -> float:
        # A cache miss waits for the stub once (max_retries is 0); the rest is headroom for a
        # loaded machine. This also bounds how far an in-flight request can overrun the cap.
        return 10.0 + 2 * self.llm_delay_seconds
